//! The built-in scenarios, the statement catalogue and the broker profiles are embedded with `include_dir!`;
//! rebuild when any file under them changes or is added.

fn main() {
    println!("cargo:rerun-if-changed=scenarios");
    println!("cargo:rerun-if-changed=catalogue");
    println!("cargo:rerun-if-changed=brokers");
    println!("cargo:rerun-if-changed=client-scenarios");
}
