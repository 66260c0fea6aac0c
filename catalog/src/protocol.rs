//! Names both sides of the wire speak: the headers a device sends and the cloud reads, and the
//! event names the cloud's hunting tables are built from. The sensor's `wire` module builds
//! requests with them and the mock cloud's routes parse requests with them, so the two can
//! never drift apart.

/// The header a device identifies itself with. Source: MDE's own traffic as described in
/// `mock-cloud/PROTOCOL.md` (the real value is an opaque ticket; the lab takes a device id).
pub const DEVICE_HEADER: &str = "msadeviceticket";

/// The longest device id the cloud accepts in [`DEVICE_HEADER`] (the lab's choice: the real
/// ticket is opaque); the CnC and 1DS routes refuse longer ones, the journal keeps no more.
pub const MAX_DEVICE_ID: usize = 256;

/// The 1DS tenant (ingestion) key header: the batch's tenant tokens, comma-separated. Source:
/// `lib/http/HttpRequestEncoder.cpp` of microsoft/cpp_client_telemetry, which sends `APIKey`
/// (header names are case-insensitive).
pub const APIKEY_HEADER: &str = "apikey";

/// The 1DS client authentication header; `NO_AUTH` for anonymous uploads. Source: the 1DS
/// C++ SDK (`lib/http/HttpRequestEncoder.cpp`, microsoft/cpp_client_telemetry).
pub const CLIENT_ID_HEADER: &str = "client-id";

/// The value of [`CLIENT_ID_HEADER`] for uploads without client authentication.
pub const CLIENT_ID_NO_AUTH: &str = "NO_AUTH";

/// When the batch left the device (milliseconds since the Unix epoch). Source: the 1DS C++ SDK
/// (`lib/http/HttpRequestEncoder.cpp`).
pub const UPLOAD_TIME_HEADER: &str = "upload-time";

/// The 1DS SDK name and version. Source: the 1DS C++ SDK (`lib/http/HttpRequestEncoder.cpp`).
pub const SDK_VERSION_HEADER: &str = "sdk-version";

/// The 1DS event name whose events become `DeviceNetworkEvents` rows in advanced hunting
/// (the table name analysts query; the lab's choice of event name).
pub const NETWORK_EVENT_NAME: &str = "DeviceNetworkEvents";

/// The blob type header of an Azure Blob Storage `Put Blob`; the lab's storage accepts
/// [`BLOCK_BLOB`] only. Source: Azure Storage REST API, "Put Blob".
pub const BLOB_TYPE_HEADER: &str = "x-ms-blob-type";

/// The value of [`BLOB_TYPE_HEADER`] for a block blob.
pub const BLOCK_BLOB: &str = "BlockBlob";

/// The MD5 of a request body, base64; the storage refuses a body that does not match.
/// Source: Azure Storage REST API, "Put Blob" (RFC 1864 `Content-MD5`).
pub const CONTENT_MD5_HEADER: &str = "content-md5";
