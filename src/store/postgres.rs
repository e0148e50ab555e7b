//! postgres backend. (stub)

use super::{Delivery, NewDelivery, Recorded, Result, StoredEvent};
use crate::call::Call;
use crate::notification::{Notification, Rejection};

#[derive(Clone, Debug)]
pub struct PgStore {}

impl PgStore {
    pub fn connect_lazy(_url: &str, _max_connections: u32) -> Result<Self> {
        todo!()
    }
    pub async fn migrate(&self) -> Result<()> {
        todo!()
    }
    pub async fn ping(&self) -> Result<()> {
        todo!()
    }
    pub async fn record(
        &self,
        _delivery: NewDelivery<'_>,
        _parsed: &Result<Notification, Rejection>,
    ) -> Result<Recorded> {
        todo!()
    }
    pub async fn call(&self, _conversation_id: &str) -> Result<Option<(Call, Vec<StoredEvent>)>> {
        todo!()
    }
    pub async fn delivery(&self, _id: i64) -> Result<Option<Delivery>> {
        todo!()
    }
    pub async fn close(&self) {}
}
