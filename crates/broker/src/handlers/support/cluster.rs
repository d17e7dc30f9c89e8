//! What DescribeCluster and Metadata both tell clients about the cluster.

use kraft_metadata::MetadataImage;

use crate::context::BrokerContext;
use crate::metadata_cache::CacheQueries;

/// The id clients are given as "controller": this broker if it is alive,
/// else the lowest alive broker, else -1.
pub fn reported_controller_id(ctx: &BrokerContext, image: &MetadataImage) -> i32 {
    if image.is_broker_alive(ctx.node_id) {
        return ctx.node_id;
    }
    image.alive_brokers().first().map_or(-1, |b| b.id)
}
