//! Common Schema events as Bond CompactBinary v1 `CsProtocol::Record`s: what a Windows
//! sensor's native telemetry stack (the 1DS C++ SDK) puts on the wire, for a sensor set to
//! post Bond instead of JSON.
//!
//! The encoding follows the SDK's own writer (`lib/bond/CompactBinaryProtocolWriter.hpp` and
//! the generated `lib/bond/generated/CsProtocol_writers.hpp` of microsoft/cpp_client_telemetry):
//! fields in id order, a field left out when it holds its default (an empty string or vector,
//! a zero number, `ValueString` as a value's type), records back to back with nothing around
//! them (`lib/packager/BondSplicer.cpp`). The field tables are shared with the cloud's decoder
//! ([`mdelab_catalog::common_schema`]).
//!
//! From JSON, a property value becomes the `CsProtocol::Value` the SDK would have made for the
//! same kind: strings, `ValueInt64` for integers (the SDK widens every integer kind),
//! `ValueDouble`, `ValueBool`, and the int64/double/string array kinds. JSON has no GUID or
//! date-time kind, so those stay strings; `null`, objects and mixed arrays are sent as their
//! JSON text (the lab's choice: the SDK's API has no such kinds).

use mdelab_catalog::common_schema::{
    DATA_PROPERTIES, EXTENSIONS, Field, RECORD, Schema, TICKS_AT_UNIX_EPOCH, value_kind,
    wire_type as wt,
};
use serde_json::{Map, Value};

/// Encodes events (Common Schema JSON objects) as one Bond body: their records back to back.
/// Anything that is not an object is skipped.
pub fn encode_events<'a>(events: impl IntoIterator<Item = &'a Value>) -> Vec<u8> {
    let mut w = Writer(Vec::new());
    for event in events {
        if let Some(event) = event.as_object() {
            w.record(event);
        }
    }
    w.0
}

/// A CompactBinary v1 writer.
struct Writer(Vec<u8>);

impl Writer {
    fn varint(&mut self, mut v: u64) {
        loop {
            let byte = (v & 0x7f) as u8;
            v >>= 7;
            if v == 0 {
                self.0.push(byte);
                return;
            }
            self.0.push(byte | 0x80);
        }
    }

    fn zigzag(&mut self, v: i64) {
        self.varint(((v << 1) ^ (v >> 63)) as u64);
    }

    fn header(&mut self, ty: u8, id: u16) {
        // `WriteFieldBegin`: ids up to 5 in the type byte, else one or two more bytes.
        if id <= 5 {
            self.0.push(ty | ((id as u8) << 5));
        } else if id <= 0xff {
            self.0.push(ty | (6 << 5));
            self.0.push(id as u8);
        } else {
            self.0.push(ty | (7 << 5));
            self.0.extend_from_slice(&id.to_le_bytes());
        }
    }

    fn string(&mut self, s: &str) {
        self.varint(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn container(&mut self, element: u8, len: usize) {
        self.0.push(element);
        self.varint(len as u64);
    }

    fn stop(&mut self) {
        self.0.push(wt::STOP);
    }

    fn record(&mut self, event: &Map<String, Value>) {
        let ext = event.get("ext").and_then(Value::as_object);
        // Record fields and ext vectors interleave by id, as the SDK's writer orders them.
        let mut fields: Vec<(u16, Option<(&str, &Schema)>)> =
            RECORD.0.iter().map(|f| (f.id, None)).collect();
        fields.extend(
            EXTENSIONS
                .iter()
                .map(|(id, name, schema)| (*id, Some((*name, *schema)))),
        );
        fields.sort_by_key(|(id, _)| *id);
        for (id, extension) in fields {
            match extension {
                Some((name, schema)) => {
                    if let Some(part) = ext.and_then(|e| e.get(name)).and_then(Value::as_object) {
                        self.header(wt::LIST, id);
                        self.container(wt::STRUCT, 1);
                        self.structure(part, schema);
                    }
                }
                None => {
                    let Some(field) = RECORD.field(id) else {
                        continue;
                    };
                    if let Some(value) = event.get(field.name) {
                        self.record_field(field, value);
                    }
                }
            }
        }
        self.stop();
    }

    fn record_field(&mut self, field: &Field, value: &Value) {
        match field.name {
            "time" => {
                if let Some(ticks) = value.as_str().and_then(rfc3339_to_ticks) {
                    self.header(wt::INT64, field.id);
                    self.zigzag(ticks);
                }
            }
            // Defaults the SDK leaves out: popSample 100 (the schema's default).
            "popSample" if value.as_f64() == Some(100.0) => {}
            "data" | "baseData" | "extData" => {
                if let Some(props) = value.as_object() {
                    self.header(wt::LIST, field.id);
                    self.container(wt::STRUCT, 1);
                    self.properties(props);
                }
            }
            _ => self.scalar(field, value),
        }
    }

    /// A struct whose fields are all scalars or string maps (the `ext` parts).
    fn structure(&mut self, object: &Map<String, Value>, schema: &Schema) {
        for field in schema.0 {
            if let Some(value) = object.get(field.name) {
                self.scalar(field, value);
            }
        }
        self.stop();
    }

    /// One field by its schema wire type; values that do not fit the type are left out.
    fn scalar(&mut self, field: &Field, value: &Value) {
        match field.wire {
            wt::STRING => {
                let text = match value {
                    Value::String(s) => s.clone(),
                    Value::Null => return,
                    other => other.to_string(),
                };
                if !text.is_empty() {
                    self.header(wt::STRING, field.id);
                    self.string(&text);
                }
            }
            wt::INT64 | wt::INT32 => {
                if let Some(v) = value.as_i64().filter(|v| *v != 0) {
                    self.header(field.wire, field.id);
                    self.zigzag(v);
                }
            }
            wt::UINT64 | wt::UINT32 => {
                if let Some(v) = value.as_u64().filter(|v| *v != 0) {
                    self.header(field.wire, field.id);
                    self.varint(v);
                }
            }
            wt::DOUBLE => {
                if let Some(v) = value.as_f64().filter(|v| *v != 0.0) {
                    self.header(wt::DOUBLE, field.id);
                    self.0.extend_from_slice(&v.to_le_bytes());
                }
            }
            wt::BOOL if value.as_bool() == Some(true) => {
                self.header(wt::BOOL, field.id);
                self.0.push(1);
            }
            wt::MAP => {
                if let Some(map) = value.as_object().filter(|m| !m.is_empty()) {
                    self.header(wt::MAP, field.id);
                    self.0.extend_from_slice(&[wt::STRING, wt::STRING]);
                    self.varint(map.len() as u64);
                    for (k, v) in map {
                        self.string(k);
                        self.string(
                            v.as_str()
                                .map_or_else(|| v.to_string(), str::to_owned)
                                .as_str(),
                        );
                    }
                }
            }
            // Nested lists of the ext parts (`Protocol.ticketKeys`) are not sent by the lab.
            _ => {}
        }
    }

    /// `Data { properties: map<string, Value> }`, keys in byte order as the SDK's `std::map`.
    fn properties(&mut self, props: &Map<String, Value>) {
        let mut keys: Vec<&String> = props.keys().collect();
        keys.sort();
        self.header(wt::MAP, DATA_PROPERTIES);
        self.0.extend_from_slice(&[wt::STRING, wt::STRUCT]);
        self.varint(keys.len() as u64);
        for key in keys {
            self.string(key);
            self.value(&props[key]);
        }
        self.stop();
    }

    /// A `CsProtocol::Value` (fields: 1 type, 3 stringValue, 4 longValue, 5 doubleValue,
    /// 10 stringArray, 11 longArray, 12 doubleArray).
    fn value(&mut self, v: &Value) {
        let kind = |w: &mut Self, k: i64| {
            w.header(wt::INT32, 1);
            w.zigzag(k);
        };
        match v {
            Value::String(s) => {
                if !s.is_empty() {
                    self.header(wt::STRING, 3);
                    self.string(s);
                }
            }
            Value::Bool(b) => {
                kind(self, value_kind::BOOL);
                if *b {
                    self.header(wt::INT64, 4);
                    self.zigzag(1);
                }
            }
            Value::Number(n) if n.is_i64() || n.is_u64() => {
                kind(self, value_kind::INT64);
                // A u64 past i64::MAX wraps, as the SDK's int64 widening does.
                let long = n.as_i64().unwrap_or_else(|| n.as_u64().unwrap_or(0) as i64);
                if long != 0 {
                    self.header(wt::INT64, 4);
                    self.zigzag(long);
                }
            }
            Value::Number(n) => {
                kind(self, value_kind::DOUBLE);
                let d = n.as_f64().unwrap_or(0.0);
                if d != 0.0 {
                    self.header(wt::DOUBLE, 5);
                    self.0.extend_from_slice(&d.to_le_bytes());
                }
            }
            Value::Array(items) if items.iter().all(|i| i.is_i64() || i.is_u64()) => {
                kind(self, value_kind::ARRAY_INT64);
                self.nested_list(11, wt::INT64, items.len());
                for i in items {
                    self.zigzag(i.as_i64().unwrap_or_else(|| i.as_u64().unwrap_or(0) as i64));
                }
            }
            Value::Array(items) if items.iter().all(Value::is_number) => {
                kind(self, value_kind::ARRAY_DOUBLE);
                self.nested_list(12, wt::DOUBLE, items.len());
                for i in items {
                    self.0
                        .extend_from_slice(&i.as_f64().unwrap_or(0.0).to_le_bytes());
                }
            }
            Value::Array(items) if items.iter().all(Value::is_boolean) => {
                kind(self, value_kind::ARRAY_BOOL);
                self.nested_list(11, wt::INT64, items.len());
                for i in items {
                    self.zigzag(i64::from(i.as_bool() == Some(true)));
                }
            }
            Value::Array(items) if items.iter().all(Value::is_string) => {
                kind(self, value_kind::ARRAY_STRING);
                self.nested_list(10, wt::STRING, items.len());
                for i in items {
                    self.string(i.as_str().unwrap_or_default());
                }
            }
            other => {
                // No Bond kind for it: its JSON text, as a string.
                self.header(wt::STRING, 3);
                self.string(&other.to_string());
            }
        }
        self.stop();
    }

    /// A `vector<vector<T>>` field holding one inner list of `len` elements of `element`.
    fn nested_list(&mut self, id: u16, element: u8, len: usize) {
        self.header(wt::LIST, id);
        self.container(wt::LIST, 1);
        self.container(element, len);
    }
}

/// An RFC 3339 time as .NET ticks (100 ns since 0001-01-01), the SDK's `Record.time`.
fn rfc3339_to_ticks(text: &str) -> Option<i64> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    let ticks = t.unix_timestamp_nanos() / 100 + i128::from(TICKS_AT_UNIX_EPOCH);
    i64::try_from(ticks).ok()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn a_small_record_is_written_as_the_sdk_writes_it() {
        let event = json!({"ver": "3.0", "name": "e", "data": {"n": 2}});
        let bytes = encode_events([&event]);
        assert_eq!(
            bytes,
            vec![
                0x29, 3, b'3', b'.', b'0', // field 1 string "3.0"
                0x49, 1, b'e', // field 2 string "e"
                0xcb, 70, 0x0a, 1, // field 70 list<struct> of 1
                0x2d, 0x09, 0x0a, 1, // Data field 1 map<string, struct> of 1
                1, b'n', // key "n"
                0x30, 0, // Value.type = ValueInt64 (0), written explicitly
                0x91, 4, // Value.longValue (field 4, int64) = zigzag(2)
                0, // end of Value
                0, // end of Data
                0, // end of Record
            ]
        );
    }

    #[test]
    fn time_becomes_ticks_and_defaults_are_left_out() {
        let event = json!({
            "name": "e",
            "time": "2024-01-02T03:04:05.678Z",
            "popSample": 100.0,
            "ext": {"user": {}, "os": {"name": ""}},
            "data": {"z": false, "zero": 0, "empty": ""}
        });
        let bytes = encode_events([&event]);
        let mut w = Writer(Vec::new());
        w.zigzag(638_397_614_456_780_000);
        let ticks = w.0;
        let at = bytes.iter().position(|b| *b == 0x71).expect("time field");
        assert_eq!(&bytes[at + 1..at + 1 + ticks.len()], ticks.as_slice());
        // popSample 100 is the default: the same bytes as without it.
        let mut without = event.clone();
        without.as_object_mut().unwrap().remove("popSample");
        assert_eq!(encode_events([&without]), bytes);
        // Empty ext parts are still sent, as empty structs (the SDK sends `extUser` so).
        assert!(bytes.windows(4).any(|w| w == [0xcb, 22, 0x0a, 1]));
    }

    #[test]
    fn non_objects_are_skipped() {
        assert!(encode_events(&[json!(1), json!("x")]).is_empty());
    }
}
