//! 1DS bodies in Bond CompactBinary v1 (`application/bond-compact-binary`): the encoding the
//! 1DS C++ SDK (microsoft/cpp_client_telemetry), used by native Windows and Linux clients,
//! sends. A body is a run of `CsProtocol::Record` structs back to back (`BondSplicer::splice`
//! in `lib/packager/BondSplicer.cpp` writes each record's bytes in turn, with no count or
//! length prefix); each is decoded into the same Common Schema JSON shape a JSON client posts,
//! so the event store, hunting and the journal do not care which encoding arrived.
//!
//! Wire rules, each from the SDK's own reader and writer (`lib/bond/CompactBinaryProtocol
//! Reader.hpp`, `…Writer.hpp`, `lib/bond/generated/BondConstTypes.hpp`):
//! - a field header is one byte, type in the low 5 bits, id in the high 3; id 6 means "the
//!   id is the next byte", id 7 "the next two bytes, little endian"; a struct ends with
//!   `BT_STOP` (0) or, for a base part, `BT_STOP_BASE` (1);
//! - unsigned integers are LEB128 varints, signed ones zig-zag varints, `float`/`double`
//!   little-endian IEEE 754, `bool` one byte 0 or 1, `string` a varint length and the bytes;
//! - a list or set is an element-type byte (upper 3 bits zero in v1) and a varint count; a map
//!   a key-type byte, a value-type byte and a varint count.
//!
//! The schema is `lib/bond/CsProtocol.bond` of the same repository (Common Schema 4.0). Fields
//! the lab does not know are skipped by their wire type, as every Bond reader does, so a newer
//! SDK's additions do not break ingestion.
//!
//! Hostile input is bounded: nesting depth ([`MAX_DEPTH`]), every length and count checked
//! against the bytes left before anything is allocated (each element costs at least one byte,
//! so a count can never ask for more than the body holds), and a record's size cap. A broken
//! body is a [`BondError`] naming the byte offset and the field being read.

use std::fmt;

use mdelab_catalog::common_schema::{
    EXTENSIONS, RECORD, Schema, TICKS_AT_UNIX_EPOCH, VALUE, value_kind as kind, wire_type as bt,
};
use serde_json::{Map, Value};

/// The deepest nesting of structs and containers accepted. `CsProtocol::Record` needs 7
/// (record → `data` list → `Data` → `properties` map → `Value` → `guidArray` → list → list).
pub const MAX_DEPTH: usize = 16;

/// Why a body could not be decoded: where, in which field, and what was wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BondError {
    /// Byte offset in the (decompressed) body where the problem was found.
    pub offset: usize,
    /// The field being read, as a path (`Record[2].data[0].properties["x"].longValue`).
    pub field: String,
    /// What was wrong.
    pub reason: String,
}

impl fmt::Display for BondError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "at byte {} in {}: {}",
            self.offset, self.field, self.reason
        )
    }
}

impl std::error::Error for BondError {}

/// One record of a body, as Common Schema JSON.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedRecord {
    /// The event (`ver`, `name`, `time`, `iKey`, `ext`, `data`…).
    pub event: Value,
    /// The record's size on the wire, in bytes.
    pub size: usize,
}

/// What a body held.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DecodedBody {
    /// The records that are events (they have a name).
    pub records: Vec<DecodedRecord>,
    /// Records that decoded but are not events (no `name`), or are larger than the cap.
    pub rejected: u64,
}

/// Decodes every `CsProtocol::Record` of a body. Records over `max_record` bytes are counted
/// rejected, as over-long JSON lines are; a body that is not well-formed Bond is an error,
/// since after a broken record nothing says where the next one starts.
pub fn decode_records(body: &[u8], max_record: usize) -> Result<DecodedBody, BondError> {
    let mut reader = Reader::new(body);
    let mut out = DecodedBody::default();
    let mut index = 0usize;
    while reader.pos < body.len() {
        let start = reader.pos;
        reader.path.push(Seg::Record(index));
        let event = reader.record()?;
        reader.path.pop();
        let size = reader.pos - start;
        let named = event
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| !n.is_empty());
        if named && size <= max_record {
            out.records.push(DecodedRecord { event, size });
        } else {
            out.rejected += 1;
        }
        index += 1;
    }
    Ok(out)
}

/// A step of the path to the field being read, for error messages.
#[derive(Clone, Debug)]
enum Seg {
    Record(usize),
    Field(&'static str),
    FieldId(u16),
    Index(usize),
    Key(String),
}

/// A cursor over a body, with the path of the field being read.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    depth: usize,
    path: Vec<Seg>,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Self {
        Self {
            buf,
            pos: 0,
            depth: 0,
            path: Vec::new(),
        }
    }

    fn fail(&self, reason: impl Into<String>) -> BondError {
        let mut field = String::new();
        for seg in &self.path {
            match seg {
                Seg::Record(i) => field.push_str(&format!("Record[{i}]")),
                Seg::Field(name) => {
                    if !field.is_empty() {
                        field.push('.');
                    }
                    field.push_str(name);
                }
                Seg::FieldId(id) => field.push_str(&format!(".<field {id}>")),
                Seg::Index(i) => field.push_str(&format!("[{i}]")),
                Seg::Key(k) => field.push_str(&format!("[{k:?}]")),
            }
        }
        if field.is_empty() {
            field.push_str("body");
        }
        BondError {
            offset: self.pos,
            field,
            reason: reason.into(),
        }
    }

    fn left(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u8(&mut self) -> Result<u8, BondError> {
        let b = *self
            .buf
            .get(self.pos)
            .ok_or_else(|| self.fail("the body ends in the middle of a value"))?;
        self.pos += 1;
        Ok(b)
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], BondError> {
        if n > self.left() {
            return Err(self.fail(format!(
                "{n} bytes announced, only {} left in the body",
                self.left()
            )));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn varint(&mut self, bits: u32) -> Result<u64, BondError> {
        let start = self.pos;
        let mut value = 0u64;
        let mut shift = 0u32;
        loop {
            let b = self.u8()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                break;
            }
            shift += 7;
            if shift >= bits {
                self.pos = start;
                return Err(self.fail(format!("a varint longer than {bits} bits")));
            }
        }
        if bits < 64 && value >> bits != 0 {
            self.pos = start;
            return Err(self.fail(format!("a varint does not fit in {bits} bits")));
        }
        Ok(value)
    }

    fn zigzag(&mut self, bits: u32) -> Result<i64, BondError> {
        let u = self.varint(bits)?;
        Ok((u >> 1) as i64 ^ -((u & 1) as i64))
    }

    fn count(&mut self, min_element: usize) -> Result<usize, BondError> {
        let start = self.pos;
        let n = self.varint(32)? as usize;
        // Each element takes at least `min_element` bytes: a larger count is a lie, refused
        // before anything is allocated for it (reported where the count starts).
        if n.saturating_mul(min_element) > self.left() {
            let left = self.left();
            self.pos = start;
            let what = if min_element == 1 {
                "bytes or elements"
            } else {
                "elements"
            };
            return Err(self.fail(format!(
                "{n} {what} announced, only {left} bytes left in the body"
            )));
        }
        Ok(n)
    }

    fn enter(&mut self) -> Result<(), BondError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.fail(format!("nested deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    /// The smallest encoding of one value of a wire type, in bytes.
    fn min_size(ty: u8) -> usize {
        match ty {
            bt::FLOAT => 4,
            bt::DOUBLE => 8,
            bt::LIST | bt::SET => 2,
            bt::MAP => 3,
            _ => 1,
        }
    }

    /// A field header: `None` at the end of a struct (`BT_STOP` or `BT_STOP_BASE`).
    fn field_header(&mut self) -> Result<Option<(u8, u16)>, BondError> {
        let raw = self.u8()?;
        let ty = raw & 0x1f;
        let id = match raw >> 5 {
            6 => u16::from(self.u8()?),
            7 => {
                let lo = self.u8()?;
                let hi = self.u8()?;
                u16::from_le_bytes([lo, hi])
            }
            small => u16::from(small),
        };
        if ty == bt::STOP || ty == bt::STOP_BASE {
            return Ok(None);
        }
        Ok(Some((ty, id)))
    }

    /// Any value of wire type `ty`, as JSON; structs named by `schema` when given.
    fn value(&mut self, ty: u8, schema: Option<Schema>) -> Result<Value, BondError> {
        Ok(match ty {
            bt::BOOL => match self.u8()? {
                0 => Value::Bool(false),
                1 => Value::Bool(true),
                other => {
                    self.pos -= 1;
                    return Err(self.fail(format!("a bool must be 0 or 1, not {other}")));
                }
            },
            bt::UINT8 => Value::from(self.u8()?),
            bt::INT8 => Value::from(self.u8()? as i8),
            bt::UINT16 => Value::from(self.varint(16)?),
            bt::UINT32 => Value::from(self.varint(32)?),
            bt::UINT64 => Value::from(self.varint(64)?),
            bt::INT16 => Value::from(self.zigzag(16)?),
            bt::INT32 => Value::from(self.zigzag(32)?),
            bt::INT64 => Value::from(self.zigzag(64)?),
            bt::FLOAT => {
                let b = self.bytes(4)?;
                float(f64::from(f32::from_le_bytes([b[0], b[1], b[2], b[3]])))
            }
            bt::DOUBLE => {
                let b = self.bytes(8)?;
                let mut a = [0u8; 8];
                a.copy_from_slice(b);
                float(f64::from_le_bytes(a))
            }
            bt::STRING => Value::String(self.string()?),
            bt::WSTRING => {
                let n = self.count(2)?;
                let b = self.bytes(n * 2)?;
                let units: Vec<u16> = b
                    .chunks_exact(2)
                    .map(|c| u16::from_le_bytes([c[0], c[1]]))
                    .collect();
                Value::String(String::from_utf16_lossy(&units))
            }
            bt::STRUCT => Value::Object(self.structure(schema.unwrap_or(Schema(&[])))?),
            bt::LIST | bt::SET => {
                let items = self.list_items(schema)?;
                Value::Array(items)
            }
            bt::MAP => Value::Object(self.map(schema)?),
            other => {
                return Err(self.fail(format!("unknown Bond type {other}")));
            }
        })
    }

    fn string(&mut self) -> Result<String, BondError> {
        let n = self.count(1)?;
        let start = self.pos;
        let b = self.bytes(n)?;
        match std::str::from_utf8(b) {
            Ok(s) => Ok(s.to_owned()),
            Err(e) => {
                self.pos = start + e.valid_up_to();
                Err(self.fail("a string is not valid UTF-8"))
            }
        }
    }

    /// A list or set body (element type and count, then the elements).
    fn list_items(&mut self, schema: Option<Schema>) -> Result<Vec<Value>, BondError> {
        self.enter()?;
        let raw = self.u8()?;
        if raw >> 5 != 0 {
            self.pos -= 1;
            return Err(self.fail(
                "a container header with a packed size (CompactBinary v2), not v1 as 1DS sends",
            ));
        }
        let ty = raw & 0x1f;
        let n = self.count(Self::min_size(ty))?;
        let mut items = Vec::with_capacity(n);
        for i in 0..n {
            self.path.push(Seg::Index(i));
            items.push(self.value(ty, schema)?);
            self.path.pop();
        }
        self.leave();
        Ok(items)
    }

    /// A map body; keys become JSON object keys (numbers in their decimal form).
    fn map(&mut self, schema: Option<Schema>) -> Result<Map<String, Value>, BondError> {
        self.enter()?;
        let key_ty = self.u8()?;
        let value_ty = self.u8()?;
        if key_ty >> 5 != 0 || value_ty >> 5 != 0 {
            self.pos -= 1;
            return Err(self.fail("a map header with bits set above the type"));
        }
        let n = self.count(Self::min_size(key_ty) + Self::min_size(value_ty))?;
        let mut map = Map::new();
        for _ in 0..n {
            let key = match self.value(key_ty, None)? {
                Value::String(s) => s,
                other => other.to_string(),
            };
            self.path.push(Seg::Key(key.clone()));
            let value = self.value(value_ty, schema)?;
            self.path.pop();
            map.insert(key, value);
        }
        self.leave();
        Ok(map)
    }

    /// A struct's fields, named by `schema`; unknown fields are kept under their id.
    fn structure(&mut self, schema: Schema) -> Result<Map<String, Value>, BondError> {
        self.enter()?;
        let mut map = Map::new();
        while let Some((ty, id)) = self.field_header()? {
            let known = schema.field(id);
            self.path.push(match known {
                Some(field) => Seg::Field(field.name),
                None => Seg::FieldId(id),
            });
            let value = self.value(ty, known.and_then(|field| field.nested.copied()))?;
            self.path.pop();
            match known {
                Some(field) => map.insert(field.name.to_owned(), value),
                None => map.insert(id.to_string(), value),
            };
        }
        self.leave();
        Ok(map)
    }

    /// One `CsProtocol::Record`, as Common Schema JSON.
    fn record(&mut self) -> Result<Value, BondError> {
        self.enter()?;
        let mut event = Map::new();
        let mut ext = Map::new();
        let mut data = Map::new();
        while let Some((ty, id)) = self.field_header()? {
            if let Some((_, name, schema)) = EXTENSIONS.iter().find(|(fid, _, _)| *fid == id) {
                self.path.push(Seg::Field(name));
                // `vector<Ext>` with (at most) one element: the SDK's optional sub-struct.
                let first = self
                    .expect_list(ty)?
                    .then(|| self.list_items(Some(**schema)))
                    .transpose()?
                    .and_then(|items| items.into_iter().next());
                self.path.pop();
                if let Some(v) = first {
                    ext.insert((*name).to_owned(), v);
                }
                continue;
            }
            let name = RECORD.field(id).map_or("", |field| field.name);
            self.path.push(if name.is_empty() {
                Seg::FieldId(id)
            } else {
                Seg::Field(name)
            });
            match id {
                3 => {
                    let ticks = self.expect_int(ty)?;
                    event.insert("time".to_owned(), ticks_to_rfc3339(ticks));
                }
                41 | 61 | 70 => {
                    self.expect_list(ty)?;
                    let props = self.data_list()?;
                    match id {
                        70 => data.extend(props),
                        61 => {
                            event.insert("baseData".to_owned(), Value::Object(props));
                        }
                        _ => {
                            event.insert("extData".to_owned(), Value::Object(props));
                        }
                    }
                }
                _ => {
                    let value = self.value(ty, None)?;
                    if !name.is_empty() {
                        event.insert(name.to_owned(), value);
                    }
                }
            }
            self.path.pop();
        }
        self.leave();
        if !ext.is_empty() {
            event.insert("ext".to_owned(), Value::Object(ext));
        }
        if !data.is_empty() {
            event.insert("data".to_owned(), Value::Object(data));
        }
        Ok(Value::Object(event))
    }

    fn expect_list(&mut self, ty: u8) -> Result<bool, BondError> {
        if ty == bt::LIST || ty == bt::SET {
            Ok(true)
        } else {
            Err(self.fail(format!("expected a list, found Bond type {ty}")))
        }
    }

    fn expect_int(&mut self, ty: u8) -> Result<i64, BondError> {
        match ty {
            bt::INT64 => self.zigzag(64),
            bt::INT32 => self.zigzag(32),
            bt::UINT64 => self.varint(64).map(|v| v as i64),
            _ => Err(self.fail(format!("expected an integer, found Bond type {ty}"))),
        }
    }

    /// `vector<Data>`: every element's `properties` map, merged, each `Value` made plain JSON.
    fn data_list(&mut self) -> Result<Map<String, Value>, BondError> {
        self.enter()?;
        let raw = self.u8()?;
        let ty = raw & 0x1f;
        if raw >> 5 != 0 || ty != bt::STRUCT {
            self.pos -= 1;
            return Err(self.fail("expected a list of Data structs"));
        }
        let n = self.count(1)?;
        let mut props = Map::new();
        for i in 0..n {
            self.path.push(Seg::Index(i));
            self.enter()?;
            while let Some((fty, id)) = self.field_header()? {
                if id == 1 && fty == bt::MAP {
                    self.path.push(Seg::Field("properties"));
                    self.properties(&mut props)?;
                    self.path.pop();
                } else {
                    self.path.push(Seg::FieldId(id));
                    self.value(fty, None)?;
                    self.path.pop();
                }
            }
            self.leave();
            self.path.pop();
        }
        self.leave();
        Ok(props)
    }

    /// `map<string, Value>`: each `CsProtocol::Value` becomes the JSON value it stands for.
    fn properties(&mut self, props: &mut Map<String, Value>) -> Result<(), BondError> {
        self.enter()?;
        let key_ty = self.u8()?;
        let value_ty = self.u8()?;
        if key_ty != bt::STRING || value_ty != bt::STRUCT {
            self.pos -= 2;
            return Err(self.fail(format!(
                "properties must be map<string, Value>, found key type {key_ty}, value type \
                 {value_ty}"
            )));
        }
        let n = self.count(2)?;
        for _ in 0..n {
            let key = self.string()?;
            self.path.push(Seg::Key(key.clone()));
            let raw = self.structure(VALUE)?;
            let value = self.plain(&raw)?;
            self.path.pop();
            props.insert(key, value);
        }
        self.leave();
        Ok(())
    }

    /// A decoded `CsProtocol::Value` as the plain JSON a JSON client would have sent. Omitted
    /// fields take the schema's defaults (`type` = string, numbers 0), as the SDK's writer
    /// omits defaults (`lib/bond/generated/CsProtocol_writers.hpp`).
    fn plain(&self, raw: &Map<String, Value>) -> Result<Value, BondError> {
        let kind = raw
            .get("type")
            .and_then(Value::as_i64)
            .unwrap_or(kind::STRING);
        let long = raw.get("longValue").and_then(Value::as_i64).unwrap_or(0);
        let first = |name: &str| -> Value {
            raw.get(name)
                .and_then(Value::as_array)
                .and_then(|a| a.first())
                .cloned()
                .unwrap_or_else(|| Value::Array(Vec::new()))
        };
        let longs = || -> Vec<i64> {
            first("longArray")
                .as_array()
                .map(|a| a.iter().filter_map(Value::as_i64).collect())
                .unwrap_or_default()
        };
        Ok(match kind {
            kind::INT64 | kind::INT32 => Value::from(long),
            kind::UINT64 | kind::UINT32 => Value::from(long as u64),
            kind::DOUBLE => raw.get("doubleValue").cloned().unwrap_or(Value::from(0.0)),
            kind::STRING => raw
                .get("stringValue")
                .cloned()
                .unwrap_or(Value::String(String::new())),
            kind::BOOL => Value::Bool(long != 0),
            kind::DATE_TIME => ticks_to_rfc3339(long),
            kind::GUID => guid(&first("guidValue"))
                .ok_or_else(|| self.fail("a GUID value is not 16 bytes"))?,
            kind::ARRAY_INT64 | kind::ARRAY_INT32 => {
                Value::Array(longs().into_iter().map(Value::from).collect())
            }
            kind::ARRAY_UINT64 | kind::ARRAY_UINT32 => {
                Value::Array(longs().into_iter().map(|v| Value::from(v as u64)).collect())
            }
            kind::ARRAY_BOOL => {
                Value::Array(longs().into_iter().map(|v| Value::Bool(v != 0)).collect())
            }
            kind::ARRAY_DATE_TIME => {
                Value::Array(longs().into_iter().map(ticks_to_rfc3339).collect())
            }
            kind::ARRAY_DOUBLE => first("doubleArray"),
            kind::ARRAY_STRING => first("stringArray"),
            kind::ARRAY_GUID => {
                let items = first("guidArray");
                let mut out = Vec::new();
                for g in items.as_array().into_iter().flatten() {
                    out.push(guid(g).ok_or_else(|| self.fail("a GUID value is not 16 bytes"))?);
                }
                Value::Array(out)
            }
            other => return Err(self.fail(format!("unknown ValueKind {other}"))),
        })
    }
}

/// A finite double as a JSON number; NaN and infinities (which JSON lacks) as strings.
fn float(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or_else(|| Value::String(v.to_string()), Value::Number)
}

/// 16 bytes in the SDK's order (`GUID_t::to_bytes`, `lib/system/EventProperty.cpp`: Data1,
/// Data2 and Data3 little endian, then Data4) as the usual `8-4-4-4-12` text.
fn guid(bytes: &Value) -> Option<Value> {
    let b: Vec<u8> = bytes
        .as_array()?
        .iter()
        .map(|v| v.as_u64().and_then(|n| u8::try_from(n).ok()))
        .collect::<Option<_>>()?;
    if b.len() != 16 {
        return None;
    }
    let d1 = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let d2 = u16::from_le_bytes([b[4], b[5]]);
    let d3 = u16::from_le_bytes([b[6], b[7]]);
    Some(Value::String(format!(
        "{d1:08x}-{d2:04x}-{d3:04x}-{:02x}{:02x}-{:02x}{:02x}{:02x}{:02x}{:02x}{:02x}",
        b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]
    )))
}

/// .NET ticks as an RFC 3339 UTC time with 7 fractional digits (the Common Schema JSON form);
/// ticks outside the representable range stay a number.
fn ticks_to_rfc3339(ticks: i64) -> Value {
    let unix_100ns = i128::from(ticks) - i128::from(TICKS_AT_UNIX_EPOCH);
    let Ok(t) = time::OffsetDateTime::from_unix_timestamp_nanos(unix_100ns * 100) else {
        return Value::from(ticks);
    };
    let sub = (unix_100ns.rem_euclid(10_000_000)) as u32;
    Value::String(format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{sub:07}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

#[cfg(test)]
mod tests;
