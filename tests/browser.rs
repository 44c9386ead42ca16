//! The map page end to end in headless Chromium: the heatmap layer renders non-empty tiles, and
//! one click lists the nearest points from /v1/near.
//!
//! Chromium is driven over its DevTools protocol. Without a chromium binary the test says so and
//! passes, unless KDSLED_REQUIRE_BROWSER is set (as CI does after installing Debian's chromium).

mod common;

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::build_index;
use kdsled::server::ServerConfig;
use kdsled::Metric;
use serde_json::{json, Value};
use tungstenite::stream::MaybeTlsStream;
use tungstenite::{Message, WebSocket};

fn chromium() -> Option<String> {
    for c in [
        "/usr/bin/chromium",
        "/usr/bin/chromium-browser",
        "/usr/bin/google-chrome",
    ] {
        if std::path::Path::new(c).exists() {
            return Some(c.to_string());
        }
    }
    if std::env::var_os("KDSLED_REQUIRE_BROWSER").is_some() {
        panic!("KDSLED_REQUIRE_BROWSER is set but no chromium binary was found");
    }
    None
}

struct Cdp {
    ws: WebSocket<MaybeTlsStream<TcpStream>>,
    next: u64,
}

impl Cdp {
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next += 1;
        let id = self.next;
        self.ws
            .send(Message::text(
                json!({"id": id, "method": method, "params": params}).to_string(),
            ))
            .unwrap();
        loop {
            let msg = self.ws.read().unwrap();
            if let Message::Text(t) = msg {
                let v: Value = serde_json::from_str(t.as_str()).unwrap();
                if v["id"] == id {
                    assert!(v.get("error").is_none(), "{method}: {v}");
                    return v["result"].clone();
                }
            }
        }
    }

    fn eval(&mut self, js: &str) -> Value {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": js, "returnByValue": true, "awaitPromise": true}),
        );
        assert!(r.get("exceptionDetails").is_none(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    fn wait_for(&mut self, js: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let v = self.eval(js);
            if v.as_bool() == Some(true) || v.as_u64().is_some_and(|n| n > 0) {
                return v;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {js}");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

#[test]
fn the_map_page_lists_points_on_click_and_draws_the_heatmap() {
    let Some(chrome) = chromium() else {
        eprintln!("SKIPPED: no chromium binary (apt-get install chromium); set KDSLED_REQUIRE_BROWSER to fail instead");
        return;
    };
    // Points around central Paris, where the page opens.
    let pts: Vec<Vec<f64>> = (0..400)
        .map(|i| {
            vec![
                2.30 + (i % 20) as f64 * 0.005,
                48.83 + (i / 20) as f64 * 0.003,
            ]
        })
        .collect();
    let t = build_index(Metric::Haversine, 2, &pts);
    let server = common::inproc::serve(Arc::clone(&t.index), ServerConfig::default());
    let base = server.base.clone();

    let profile = tempfile::tempdir().unwrap();
    let mut child = Command::new(chrome)
        .args([
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--remote-debugging-port=0",
            "--window-size=1200,800",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(format!("{base}/?center=48.8566,2.3522&zoom=13"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ws_browser = loop {
        let l = lines.next().expect("chromium exited").unwrap();
        if let Some(i) = l.find("ws://") {
            break l[i..].trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let port = ws_browser
        .trim_start_matches("ws://")
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let deadline = Instant::now() + Duration::from_secs(20);
    let page_ws = loop {
        let mut r = ureq::get(&format!("http://{port}/json/list"))
            .call()
            .unwrap();
        let list: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
        if let Some(p) = list
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["type"] == "page" && t["url"].as_str().unwrap_or("").starts_with(&base))
        {
            break p["webSocketDebuggerUrl"].as_str().unwrap().to_string();
        }
        assert!(Instant::now() < deadline, "no page target: {list}");
        std::thread::sleep(Duration::from_millis(100));
    };
    let (ws, _) = tungstenite::connect(page_ws).unwrap();
    let mut cdp = Cdp { ws, next: 0 };

    // The heatmap layer loads tiles, and at least one of them has coloured pixels.
    cdp.wait_for("!!window.kdsledMap && document.querySelectorAll('.heatmap img.leaflet-tile-loaded').length");
    let coloured = cdp.wait_for(
        "(async () => { let n = 0; for (const img of document.querySelectorAll('.heatmap img.leaflet-tile-loaded')) {
            const c = document.createElement('canvas'); c.width = 256; c.height = 256;
            const g = c.getContext('2d'); g.drawImage(img, 0, 0);
            const d = g.getImageData(0, 0, 256, 256).data;
            for (let i = 3; i < d.length; i += 4) if (d[i] > 0) { n++; break; } }
          return n; })()",
    );
    assert!(coloured.as_u64().unwrap() > 0);

    // The offline base map drew country outlines; the legend shows the colour scale and its
    // values; the saturation follows the walking distance until moved; the view is in the URL.
    let countries =
        cdp.wait_for("window.kdsledBasemap && document.querySelectorAll('path.basemap').length");
    assert!(countries.as_u64().unwrap() > 100, "{countries}");
    let legend = cdp.eval("[getComputedStyle(document.querySelector('#legend .bar')).backgroundImage, document.getElementById('tick-max').textContent]");
    assert!(
        legend[0].as_str().unwrap().contains("linear-gradient"),
        "{legend}"
    );
    assert_eq!(legend[1], "3.6 km");
    let followed = cdp.eval("(() => { const r = document.getElementById('radius'); r.value = 2000; r.dispatchEvent(new Event('input')); return [document.getElementById('saturation').value, location.search]; })()");
    let sat: f64 = followed[0].as_str().unwrap().parse().unwrap();
    assert_eq!(sat, 6.0, "{followed}");
    assert!(
        followed[1].as_str().unwrap().contains("radius=2000"),
        "{followed}"
    );
    cdp.eval("(() => { const r = document.getElementById('radius'); r.value = 1200; r.dispatchEvent(new Event('input')); return true; })()");

    // One click in the middle of the map.
    let rect = cdp.eval("(() => { const r = document.getElementById('map').getBoundingClientRect(); return [r.left + r.width / 2, r.top + r.height / 2]; })()");
    let (x, y) = (rect[0].as_f64().unwrap(), rect[1].as_f64().unwrap());
    for kind in ["mousePressed", "mouseReleased"] {
        cdp.call(
            "Input.dispatchMouseEvent",
            json!({"type": kind, "x": x, "y": y, "button": "left", "clickCount": 1}),
        );
    }
    cdp.wait_for("document.querySelectorAll('#results li').length");
    // The click drew the walking-distance circle.
    assert_eq!(
        cdp.eval("document.querySelectorAll('path.reach').length"),
        1
    );
    let listed =
        cdp.eval("Array.from(document.querySelectorAll('#results li')).map(li => li.textContent)");
    let listed: Vec<String> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();

    // The list is what /v1/nearest answers for the clicked point within walking distance.
    let clicked = cdp.eval("[kdsledLastQuery.lon, kdsledLastQuery.lat]");
    let (lon, lat) = (clicked[0].as_f64().unwrap(), clicked[1].as_f64().unwrap());
    // The click landed where it was aimed: near the map's centre.
    assert!(
        (lon - 2.3522).abs() < 0.01 && (lat - 48.8566).abs() < 0.01,
        "{clicked}"
    );
    let mut r = ureq::get(&format!(
        "{base}/v1/nearest?lon={lon}&lat={lat}&k=20&max_distance=1200"
    ))
    .call()
    .unwrap();
    let want: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    let want: Vec<String> = want["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} ({} m)",
                p["id"],
                p["distance_m"].as_f64().unwrap().round()
            )
        })
        .collect();
    assert!(!want.is_empty());
    assert_eq!(listed, want);
    let _ = child.kill();
    let _ = child.wait();
}
