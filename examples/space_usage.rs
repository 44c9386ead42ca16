//! Records and bytes per keyspace of an index: `cargo run --release --example space_usage -- DIR`.

use kdsled::store::{directory::current_sled_dir, SledStore, Space, Store};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args().nth(1).ok_or("usage: space_usage DIR")?;
    let dir = current_sled_dir(std::path::Path::new(&path))?.ok_or("no index")?;
    let store = SledStore::open(&dir, 64)?;
    let mut total = 0;
    for space in Space::ALL {
        let (mut n, mut keys, mut values) = (0u64, 0u64, 0u64);
        for r in store.scan(space) {
            let (k, v) = r?;
            n += 1;
            keys += k.len() as u64;
            values += v.len() as u64;
        }
        total += keys + values;
        println!(
            "{:<9} {n:>10} records {keys:>12} key bytes {values:>12} value bytes",
            space.tree_name()
        );
    }
    println!(
        "total     {total} bytes of keys and values; {} on disk",
        store.size_on_disk()?
    );
    Ok(())
}
