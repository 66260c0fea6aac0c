//! End-to-end tests of mdelab: real sockets on loopback, real TLS, real peers (curl, dig).

mod admin;
mod certify;
mod ci_use;
mod cloud;
mod demo;
mod interop;
mod proxies;
mod sensor;
mod services;
mod up;
