//! Stand-in for the classic consumer-group coordinator: answers every group call with
//! COORDINATOR_NOT_AVAILABLE and remembers nothing. Replaced by the real coordinator.

use std::path::Path;
use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;

pub struct GroupCoordinator;

const UNAVAILABLE: i16 = ResponseError::CoordinatorNotAvailable.code();

impl GroupCoordinator {
    pub fn open(dir: &Path) -> std::io::Result<Arc<GroupCoordinator>> {
        std::fs::create_dir_all(dir)?;
        Ok(Arc::new(GroupCoordinator))
    }

    pub async fn join_group(&self, _req: JoinGroupRequest, _version: i16) -> JoinGroupResponse {
        JoinGroupResponse::default().with_error_code(UNAVAILABLE)
    }

    pub async fn sync_group(&self, _req: SyncGroupRequest, _version: i16) -> SyncGroupResponse {
        SyncGroupResponse::default().with_error_code(UNAVAILABLE)
    }

    pub async fn heartbeat(&self, _req: HeartbeatRequest, _version: i16) -> HeartbeatResponse {
        HeartbeatResponse::default().with_error_code(UNAVAILABLE)
    }

    pub async fn leave_group(&self, _req: LeaveGroupRequest, _version: i16) -> LeaveGroupResponse {
        LeaveGroupResponse::default().with_error_code(UNAVAILABLE)
    }

    pub async fn offset_commit(
        &self,
        _req: OffsetCommitRequest,
        _version: i16,
    ) -> OffsetCommitResponse {
        OffsetCommitResponse::default()
    }

    pub async fn offset_fetch(
        &self,
        _req: OffsetFetchRequest,
        version: i16,
    ) -> OffsetFetchResponse {
        if (2..=7).contains(&version) {
            OffsetFetchResponse::default().with_error_code(UNAVAILABLE)
        } else {
            OffsetFetchResponse::default()
        }
    }

    pub async fn list_groups(&self, _req: ListGroupsRequest, _version: i16) -> ListGroupsResponse {
        ListGroupsResponse::default()
    }

    pub async fn describe_groups(
        &self,
        _req: DescribeGroupsRequest,
        _version: i16,
    ) -> DescribeGroupsResponse {
        DescribeGroupsResponse::default()
    }

    pub async fn delete_groups(
        &self,
        _req: DeleteGroupsRequest,
        _version: i16,
    ) -> DeleteGroupsResponse {
        DeleteGroupsResponse::default()
    }

    pub fn forget_topic(&self, _topic: &str) {}

    pub fn committed(&self, _group: &str, _topic: &str, _partition: i32) -> Option<i64> {
        None
    }

    pub fn shutdown(&self) {}
}
