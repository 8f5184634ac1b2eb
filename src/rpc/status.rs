//! The node status that `Gateway.status` reports.

use crate::node::service::Service;
use crate::rpc::calendar_capnp::node_status;

pub fn write_status(mut builder: node_status::Builder<'_>, service: &Service) {
    let status = service.status();
    builder.set_id(status.id);
    builder.set_role(status.role);
    builder.set_view(status.view);
    builder.set_op(status.op);
    builder.set_commit(status.commit);
    builder.set_primary_address(status.primary_address.as_str());
    builder.set_lag(status.lag);
    builder.set_users(status.users);
    builder.set_events(status.events);
}
