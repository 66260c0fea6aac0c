//! The 1DS Common Schema record as the 1DS C++ SDK writes it in Bond: the wire type ids of
//! Bond CompactBinary, the field ids and names of `CsProtocol::Record` and its parts, and the
//! `ValueKind`s of typed property values. Both sides use these tables: the mock cloud to decode
//! what a device sends, the sensor to encode what it sends, so the two cannot drift apart.
//!
//! Sources, all in microsoft/cpp_client_telemetry: `lib/bond/CsProtocol.bond` (the schema:
//! Common Schema 4.0), `lib/bond/generated/BondConstTypes.hpp` (wire types) and
//! `lib/bond/generated/CsProtocol_writers.hpp` (which fields are written, and when).

use wire_type::{BOOL, DOUBLE, INT32, INT64, LIST, MAP, STRING, UINT32, UINT64};

/// Bond wire types (`BondDataType` in `lib/bond/generated/BondConstTypes.hpp`): the low 5 bits
/// of a field header, and the element types of containers.
pub mod wire_type {
    /// `STOP` = 0.
    pub const STOP: u8 = 0;
    /// `STOP_BASE` = 1.
    pub const STOP_BASE: u8 = 1;
    /// `BOOL` = 2.
    pub const BOOL: u8 = 2;
    /// `UINT8` = 3.
    pub const UINT8: u8 = 3;
    /// `UINT16` = 4.
    pub const UINT16: u8 = 4;
    /// `UINT32` = 5.
    pub const UINT32: u8 = 5;
    /// `UINT64` = 6.
    pub const UINT64: u8 = 6;
    /// `FLOAT` = 7.
    pub const FLOAT: u8 = 7;
    /// `DOUBLE` = 8.
    pub const DOUBLE: u8 = 8;
    /// `STRING` = 9.
    pub const STRING: u8 = 9;
    /// `STRUCT` = 10.
    pub const STRUCT: u8 = 10;
    /// `LIST` = 11.
    pub const LIST: u8 = 11;
    /// `SET` = 12.
    pub const SET: u8 = 12;
    /// `MAP` = 13.
    pub const MAP: u8 = 13;
    /// `INT8` = 14.
    pub const INT8: u8 = 14;
    /// `INT16` = 15.
    pub const INT16: u8 = 15;
    /// `INT32` = 16.
    pub const INT32: u8 = 16;
    /// `INT64` = 17.
    pub const INT64: u8 = 17;
    /// `WSTRING` = 18.
    pub const WSTRING: u8 = 18;
}

/// One field of a Bond struct: its id, its JSON name, its wire type ([`wire_type`]) and, for a
/// struct or a list of structs, that struct's schema.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The Bond field id.
    pub id: u16,
    /// The name (the schema's, which is also the Common Schema JSON name).
    pub name: &'static str,
    /// The wire type the SDK writes it with.
    pub wire: u8,
    /// The schema of a struct (or of a list's struct elements).
    pub nested: Option<&'static Schema>,
}

/// A Bond struct's fields, in id order.
#[derive(Clone, Copy, Debug)]
pub struct Schema(pub &'static [Field]);

impl Schema {
    /// The field with this id.
    pub fn field(&self, id: u16) -> Option<&'static Field> {
        self.0.iter().find(|f| f.id == id)
    }

    /// The field with this name.
    pub fn named(&self, name: &str) -> Option<&'static Field> {
        self.0.iter().find(|f| f.name == name)
    }
}

const fn f(id: u16, name: &'static str, wire: u8) -> Field {
    Field {
        id,
        name,
        wire,
        nested: None,
    }
}

const fn s(id: u16, name: &'static str, wire: u8, nested: &'static Schema) -> Field {
    Field {
        id,
        name,
        wire,
        nested: Some(nested),
    }
}

/// `CsProtocol::Ingest`.
pub const INGEST: Schema = Schema(&[
    f(1, "time", INT64),
    f(2, "clientIp", STRING),
    f(3, "auth", INT64),
    f(4, "quality", INT64),
    f(5, "uploadTime", INT64),
    f(6, "userAgent", STRING),
    f(7, "client", STRING),
]);

/// `CsProtocol::Protocol`.
pub const PROTOCOL: Schema = Schema(&[
    f(1, "metadataCrc", INT32),
    f(2, "ticketKeys", LIST),
    f(3, "devMake", STRING),
    f(4, "devModel", STRING),
    f(5, "msp", UINT64),
]);

/// `CsProtocol::User`.
pub const USER: Schema = Schema(&[
    f(1, "id", STRING),
    f(2, "localId", STRING),
    f(3, "authId", STRING),
    f(4, "locale", STRING),
]);

/// `CsProtocol::Device`.
pub const DEVICE: Schema = Schema(&[
    f(1, "id", STRING),
    f(2, "localId", STRING),
    f(3, "authId", STRING),
    f(4, "authSecId", STRING),
    f(5, "deviceClass", STRING),
    f(6, "orgId", STRING),
    f(7, "orgAuthId", STRING),
    f(8, "make", STRING),
    f(9, "model", STRING),
    f(10, "authIdEnt", STRING),
]);

/// `CsProtocol::Os`.
pub const OS: Schema = Schema(&[
    f(1, "locale", STRING),
    f(2, "expId", STRING),
    f(3, "bootId", INT32),
    f(4, "name", STRING),
    f(5, "ver", STRING),
]);

/// `CsProtocol::App`.
pub const APP: Schema = Schema(&[
    f(1, "expId", STRING),
    f(2, "userId", STRING),
    f(3, "env", STRING),
    f(4, "asId", INT32),
    f(5, "id", STRING),
    f(6, "ver", STRING),
    f(7, "locale", STRING),
    f(8, "name", STRING),
    f(9, "sesId", STRING),
]);

/// `CsProtocol::Utc`.
pub const UTC: Schema = Schema(&[
    f(1, "stId", STRING),
    f(2, "aId", STRING),
    f(3, "raId", STRING),
    f(4, "op", STRING),
    f(5, "cat", INT64),
    f(6, "flags", INT64),
    f(7, "sqmId", STRING),
    f(9, "mon", STRING),
    f(10, "cpId", INT32),
    f(11, "bSeq", STRING),
    f(12, "epoch", STRING),
    f(13, "seq", INT64),
    f(14, "popSample", DOUBLE),
    f(15, "eventFlags", INT64),
    f(16, "wsId", INT64),
    f(17, "wcmp", INT64),
    f(18, "wPId", INT64),
]);

/// `CsProtocol::M365a`.
pub const M365A: Schema = Schema(&[f(1, "enrolledTenantId", STRING), f(2, "msp", UINT64)]);

/// `CsProtocol::Xbl`.
pub const XBL: Schema = Schema(&[
    f(5, "claims", MAP),
    f(10, "nbf", STRING),
    f(20, "exp", STRING),
    f(30, "sbx", STRING),
    f(40, "dty", STRING),
    f(50, "did", STRING),
    f(60, "xid", STRING),
    f(70, "uts", UINT64),
    f(80, "pid", STRING),
    f(90, "dvr", STRING),
    f(100, "tid", UINT32),
    f(110, "tvr", STRING),
    f(120, "sty", STRING),
    f(130, "sid", STRING),
    f(140, "eid", INT64),
    f(150, "ip", STRING),
]);

/// `CsProtocol::Javascript`.
pub const JAVASCRIPT: Schema = Schema(&[
    f(10, "libVer", STRING),
    f(15, "osName", STRING),
    f(20, "browser", STRING),
    f(21, "browserVersion", STRING),
    f(25, "platform", STRING),
    f(30, "make", STRING),
    f(35, "model", STRING),
    f(40, "screenSize", STRING),
    f(45, "msfpc", STRING),
    f(50, "mc1Id", STRING),
    f(60, "mc1Lu", UINT64),
    f(70, "isMc1New", BOOL),
    f(80, "ms0", STRING),
    f(90, "anid", STRING),
    f(100, "a", STRING),
    f(110, "msResearch", STRING),
    f(120, "csrvc", STRING),
    f(130, "rtCell", STRING),
    f(140, "rtEndAction", STRING),
    f(150, "rtPermId", STRING),
    f(160, "r", STRING),
    f(170, "wtFpc", STRING),
    f(180, "omniId", STRING),
    f(190, "gsfxSession", STRING),
    f(200, "domain", STRING),
    f(210, "userConsent", BOOL),
    f(220, "browserLang", STRING),
    f(230, "serviceName", STRING),
    f(999, "dnt", STRING),
]);

/// `CsProtocol::Receipts`.
pub const RECEIPTS: Schema = Schema(&[
    f(1, "originalTime", INT64),
    f(2, "uploadTime", INT64),
    f(3, "originalName", STRING),
    f(4, "flags", UINT64),
]);

/// `CsProtocol::Net`.
pub const NET: Schema = Schema(&[
    f(1, "provider", STRING),
    f(2, "cost", STRING),
    f(3, "type", STRING),
]);

/// `CsProtocol::Sdk`.
pub const SDK: Schema = Schema(&[
    f(1, "ver", STRING),
    f(2, "epoch", STRING),
    f(3, "seq", INT64),
    f(4, "installId", STRING),
    f(5, "libVer", STRING),
]);

/// `CsProtocol::Loc`.
pub const LOC: Schema = Schema(&[
    f(1, "id", STRING),
    f(2, "country", STRING),
    f(3, "timezone", STRING),
]);

/// `CsProtocol::Cloud`.
pub const CLOUD: Schema = Schema(&[
    f(1, "fullEnvName", STRING),
    f(2, "location", STRING),
    f(3, "environment", STRING),
    f(4, "deploymentUnit", STRING),
    f(5, "name", STRING),
    f(6, "roleInstance", STRING),
    f(7, "role", STRING),
]);

/// `CsProtocol::Service`.
pub const SERVICE: Schema = Schema(&[
    f(1, "name", STRING),
    f(2, "role", STRING),
    f(3, "roleVersion", STRING),
]);

/// `CsProtocol::Cs`.
pub const CS: Schema = Schema(&[f(1, "sig", STRING)]);

/// `CsProtocol::Mscv`.
pub const MSCV: Schema = Schema(&[f(1, "cV", STRING)]);

/// `CsProtocol::IntWeb`.
pub const INT_WEB: Schema = Schema(&[
    f(1, "mc1Id", STRING),
    f(2, "msfpc", STRING),
    f(3, "anid", STRING),
    f(4, "serviceName", STRING),
    f(5, "mscom", MAP),
]);

/// `CsProtocol::IntService`.
pub const INT_SERVICE: Schema = Schema(&[
    f(1, "fullEnvName", STRING),
    f(2, "location", STRING),
    f(3, "environment", STRING),
    f(4, "deploymentUnit", STRING),
    f(5, "name", STRING),
]);

/// `CsProtocol::Web`.
pub const WEB: Schema = Schema(&[
    f(10, "browser", STRING),
    f(20, "browserVer", STRING),
    f(30, "screenRes", STRING),
    f(40, "domain", STRING),
    f(50, "userConsent", BOOL),
    f(60, "browserLang", STRING),
    f(70, "isManual", BOOL),
]);

/// `CsProtocol::PII`.
pub const PII: Schema = Schema(&[f(1, "Kind", INT32)]);

/// `CsProtocol::CustomerContent`.
pub const CUSTOMER_CONTENT: Schema = Schema(&[f(1, "Kind", INT32)]);

/// `CsProtocol::Attributes`.
pub const ATTRIBUTES: Schema = Schema(&[
    s(1, "pii", LIST, &PII),
    s(2, "customerContent", LIST, &CUSTOMER_CONTENT),
]);

/// `CsProtocol::Value`.
pub const VALUE: Schema = Schema(&[
    f(1, "type", INT32),
    s(2, "attributes", LIST, &ATTRIBUTES),
    f(3, "stringValue", STRING),
    f(4, "longValue", INT64),
    f(5, "doubleValue", DOUBLE),
    f(6, "guidValue", LIST),
    f(10, "stringArray", LIST),
    f(11, "longArray", LIST),
    f(12, "doubleArray", LIST),
    f(13, "guidArray", LIST),
]);

/// The `ext` sub-objects of a record: `(field id of the vector<…>, JSON name, schema)`. The
/// JSON names are the Common Schema's (`ext.device`, `ext.os`…): the field name without its
/// `ext` prefix, lower-cased.
pub const EXTENSIONS: &[(u16, &str, &Schema)] = &[
    (20, "ingest", &INGEST),
    (21, "protocol", &PROTOCOL),
    (22, "user", &USER),
    (23, "device", &DEVICE),
    (24, "os", &OS),
    (25, "app", &APP),
    (26, "utc", &UTC),
    (27, "xbl", &XBL),
    (28, "javascript", &JAVASCRIPT),
    (29, "receipts", &RECEIPTS),
    (31, "net", &NET),
    (32, "sdk", &SDK),
    (33, "loc", &LOC),
    (34, "cloud", &CLOUD),
    (35, "service", &SERVICE),
    (36, "cs", &CS),
    (37, "m365a", &M365A),
    (42, "mscv", &MSCV),
    (43, "intweb", &INT_WEB),
    (44, "intservice", &INT_SERVICE),
    (45, "web", &WEB),
];

/// `ValueKind` of `CsProtocol::Value` (`lib/bond/CsProtocol.bond`).
pub mod value_kind {
    /// `INT64` = 0.
    pub const INT64: i64 = 0;
    /// `UINT64` = 1.
    pub const UINT64: i64 = 1;
    /// `INT32` = 2.
    pub const INT32: i64 = 2;
    /// `UINT32` = 3.
    pub const UINT32: i64 = 3;
    /// `DOUBLE` = 4.
    pub const DOUBLE: i64 = 4;
    /// `STRING` = 5.
    pub const STRING: i64 = 5;
    /// `BOOL` = 6.
    pub const BOOL: i64 = 6;
    /// `DATE_TIME` = 7.
    pub const DATE_TIME: i64 = 7;
    /// `GUID` = 8.
    pub const GUID: i64 = 8;
    /// `ARRAY_INT64` = 9.
    pub const ARRAY_INT64: i64 = 9;
    /// `ARRAY_UINT64` = 10.
    pub const ARRAY_UINT64: i64 = 10;
    /// `ARRAY_INT32` = 11.
    pub const ARRAY_INT32: i64 = 11;
    /// `ARRAY_UINT32` = 12.
    pub const ARRAY_UINT32: i64 = 12;
    /// `ARRAY_DOUBLE` = 13.
    pub const ARRAY_DOUBLE: i64 = 13;
    /// `ARRAY_STRING` = 14.
    pub const ARRAY_STRING: i64 = 14;
    /// `ARRAY_BOOL` = 15.
    pub const ARRAY_BOOL: i64 = 15;
    /// `ARRAY_DATE_TIME` = 16.
    pub const ARRAY_DATE_TIME: i64 = 16;
    /// `ARRAY_GUID` = 17.
    pub const ARRAY_GUID: i64 = 17;
}

/// .NET ticks (100 ns since 0001-01-01) at the Unix epoch: the SDK's `time_ticks_t` and
/// `Record.time` (`PAL::getUtcSystemTimeinTicks`) count from 0001-01-01.
pub const TICKS_AT_UNIX_EPOCH: i64 = 621_355_968_000_000_000;

/// `CsProtocol::Record`'s own fields other than the `ext…` vectors ([`EXTENSIONS`]); the JSON
/// names are the Common Schema's. `time` is .NET ticks on the wire (RFC 3339 in JSON);
/// `extData` (field 41, `vector<Data>`, named `ext` in the schema) is the lab's JSON name,
/// since `ext` already names the extension object.
pub const RECORD: Schema = Schema(&[
    f(1, "ver", STRING),
    f(2, "name", STRING),
    f(3, "time", INT64),
    f(4, "popSample", DOUBLE),
    f(5, "iKey", STRING),
    f(6, "flags", INT64),
    f(7, "cV", STRING),
    f(41, "extData", LIST),
    f(51, "tags", MAP),
    f(60, "baseType", STRING),
    f(61, "baseData", LIST),
    f(70, "data", LIST),
]);

/// The field id of `CsProtocol::Data::properties` (`map<string, Value>`).
pub const DATA_PROPERTIES: u16 = 1;
