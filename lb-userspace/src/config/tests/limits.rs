//! What the data plane's maps hold: configs beyond it are refused at the entry that
//! does not fit.

use super::*;

fn services(n: usize) -> String {
    (0..n)
        .map(|k| {
            format!(
                "[[virtual_server]]\nip = \"198.18.{}.{}\"\nport = 80\ninterface = \"eth0\"\n",
                k / 250,
                k % 250 + 1
            )
        })
        .collect()
}

#[test]
fn more_services_than_the_maps_hold_are_refused_at_the_first_extra() {
    let text = services(4097);
    // Four lines per service: the 4097th starts on line 4 x 4096 + 1.
    assert_err(
        &text,
        "16385:1: virtual_server[4096]",
        "4097 service-map entries (a virtual server each, a fwmark service one per port of \
         its match entries): the data plane holds 4096",
    );
    Config::parse(&services(4096), "t.toml").unwrap();
}

#[test]
fn scheduling_tables_beyond_the_arena_are_refused_at_the_service() {
    // wrr with weights 65535 and 65534 (gcd 1) is scaled down to a 65,535-entry table;
    // 256 of them fill the 2^24-entry arena, the 257th does not fit.
    let text: String = (0..257)
        .map(|k| {
            format!(
                "[[virtual_server]]\nip = \"198.18.{}.{}\"\nport = 80\ninterface = \"eth0\"\n\
                 [[virtual_server.real_server]]\nip = \"198.19.0.1\"\nweight = 65535\n\
                 [[virtual_server.real_server]]\nip = \"198.19.0.2\"\nweight = 65534\n",
                k / 250,
                k % 250 + 1
            )
        })
        .collect();
    // Ten lines per service: the 257th starts on line 10 x 256 + 1.
    assert_err(
        &text,
        "2561:1: virtual_server[256]",
        "the scheduling tables need 16842495 entries with this virtual server's (all \
         real servers up), more than the data plane's 16777216",
    );
}
