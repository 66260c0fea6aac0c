//! End-to-end tests of mdelab: real sockets on loopback, real TLS, real peers (curl, dig).

mod admin;
mod analyze;
mod bond_wire;
mod certify;
mod ci_use;
mod cloud;
mod demo;
mod hostile;
mod hostile_memory;
mod html;
mod interop;
mod js_sdk;
mod keylog;
mod kill_switch;
mod lifecycle;
mod netprot;
mod proxies;
mod published_lists;
mod scenarios;
mod sensor;
mod services;
mod up;
