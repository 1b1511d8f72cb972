//! Addresses on `lo`: through rtnetlink on the host, a set in the unit tests.

use std::net::IpAddr;

use super::RealServerError;

/// Addresses on `lo`; netlink in production, a set in the unit tests.
pub(super) trait Loopback {
    async fn ensure_up(&mut self) -> Result<(), RealServerError>;
    async fn has(&mut self, ip: IpAddr) -> Result<bool, RealServerError>;
    async fn add(&mut self, ip: IpAddr) -> Result<(), RealServerError>;
    /// Returns false when the address was not there.
    async fn remove(&mut self, ip: IpAddr) -> Result<bool, RealServerError>;
}

pub(super) struct NetlinkLoopback {
    handle: rtnetlink::Handle,
    index: u32,
    up: bool,
}

fn netlink_err(op: impl Into<String>) -> impl FnOnce(rtnetlink::Error) -> RealServerError {
    let op = op.into();
    move |source| RealServerError::Netlink { op, source }
}

fn is_errno(e: &rtnetlink::Error, errno: i32) -> bool {
    matches!(e, rtnetlink::Error::NetlinkError(m) if m.code.map(|c| c.get()) == Some(-errno))
}

impl NetlinkLoopback {
    pub(super) async fn open() -> Result<Self, RealServerError> {
        use futures::TryStreamExt;
        use rtnetlink::packet_route::link::LinkFlags;

        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(RealServerError::Connect)?;
        tokio::spawn(connection);
        let link = handle
            .link()
            .get()
            .match_name("lo".to_owned())
            .execute()
            .try_next()
            .await
            .map_err(|e| {
                if is_errno(&e, libc::ENODEV) {
                    RealServerError::NoLoopback
                } else {
                    netlink_err("look up lo")(e)
                }
            })?
            .ok_or(RealServerError::NoLoopback)?;
        Ok(Self {
            handle,
            index: link.header.index,
            up: link.header.flags.contains(LinkFlags::Up),
        })
    }

    async fn find(
        &self,
        ip: IpAddr,
    ) -> Result<Option<rtnetlink::packet_route::address::AddressMessage>, RealServerError> {
        use futures::TryStreamExt;
        self.handle
            .address()
            .get()
            .set_link_index_filter(self.index)
            .set_address_filter(ip)
            .execute()
            .try_next()
            .await
            .map_err(netlink_err(format!("list the addresses of lo for {ip}")))
    }
}

impl Loopback for NetlinkLoopback {
    async fn ensure_up(&mut self) -> Result<(), RealServerError> {
        if !self.up {
            let msg = rtnetlink::LinkUnspec::new_with_index(self.index)
                .up()
                .build();
            self.handle
                .link()
                .set(msg)
                .execute()
                .await
                .map_err(netlink_err("set lo up"))?;
            self.up = true;
        }
        Ok(())
    }

    async fn has(&mut self, ip: IpAddr) -> Result<bool, RealServerError> {
        Ok(self.find(ip).await?.is_some())
    }

    async fn add(&mut self, ip: IpAddr) -> Result<(), RealServerError> {
        let prefix_len = if ip.is_ipv4() { 32 } else { 128 };
        match self
            .handle
            .address()
            .add(self.index, ip, prefix_len)
            .execute()
            .await
        {
            Err(e) if is_errno(&e, libc::EEXIST) => Ok(()),
            r => r.map_err(netlink_err(format!("add {ip}/{prefix_len} on lo"))),
        }
    }

    async fn remove(&mut self, ip: IpAddr) -> Result<bool, RealServerError> {
        let Some(msg) = self.find(ip).await? else {
            return Ok(false);
        };
        match self.handle.address().del(msg).execute().await {
            Err(e) if is_errno(&e, libc::EADDRNOTAVAIL) => Ok(false),
            r => r
                .map(|()| true)
                .map_err(netlink_err(format!("remove {ip} from lo"))),
        }
    }
}
