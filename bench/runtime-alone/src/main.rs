//! `lambda_runtime` and nothing else: the least a Rust function's init can take on a machine.
//! `make bench` measures it beside the functions (the same flags, the same current-thread
//! runtime), so what our init adds above the runtime reads off one run, whatever the host.

use lambda_runtime::{Error, LambdaEvent, service_fn};
use serde_json::Value;

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Error> {
    lambda_runtime::run(service_fn(|event: LambdaEvent<Value>| async move {
        Ok::<_, Error>(event.payload)
    }))
    .await
}
