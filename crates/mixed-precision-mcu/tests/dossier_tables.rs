//! Golden tests: every row of the dossier's §7.1, §7.2, §7.3, §7.5 and the proxy table of §10.1
//! (computed from the official `quant_auto.py` rules and checked there against the deployed firmware).
//! The tables are embedded verbatim as markdown rows and parsed here, so a diff against the dossier is
//! a plain text diff.

use mixed_precision_mcu::assign::{AssignError, AssignOptions, assign};
use mixed_precision_mcu::memory::{Budget, Fold, Granularity, uniform8};
use mixed_precision_mcu::mobilenet::{MobileNetV1, imagenet_family, tiny_family};

/// Cells of a markdown table row, trimmed.
fn cells(row: &str) -> Vec<&str> {
    row.trim()
        .trim_matches('|')
        .split('|')
        .map(str::trim)
        .collect()
}

fn rows(table: &str) -> impl Iterator<Item = Vec<&str>> {
    table.lines().filter(|l| l.starts_with('|')).map(cells)
}

fn num(s: &str) -> u64 {
    s.parse()
        .unwrap_or_else(|e| panic!("golden cell {s:?} is not an integer: {e}"))
}

/// `224_0.75` -> model of the given family.
fn parse_config(name: &str, make: impl Fn(usize, f64) -> MobileNetV1) -> MobileNetV1 {
    let (r, w) = name.split_once('_').expect("config is R_width");
    make(r.parse().unwrap(), w.parse().unwrap())
}

/// `1939504 (71280)` -> (rom, extra).
fn rom_extra(cell: &str) -> (u64, u64) {
    let (rom, extra) = cell.split_once(" (").expect("rom (extra)");
    (num(rom), num(extra.trim_end_matches(')')))
}

/// §7.1: config | params | MACs | 8-bit weight bytes | ROM8 PL | ROM8 PC | peak RAM8 | fits | float | int8
const TABLE_7_1: &str = "
| 224_1.0 | 4209088 | 568740352 | 4209088 | 4257424 | 4325748 | 1204224 | no (ROM+RAM) | 70.9 | 70.1 |
| 224_0.75 | 2568144 | 325400448 | 2568144 | 2605536 | 2657444 | 903168 | no (ROM+RAM) | 68.4 | 66.8 |
| 224_0.5 | 1319648 | 149497088 | 1319648 | 1346096 | 1381588 | 602112 | no (RAM) | 63.3 | 60.7 |
| 224_0.25 | 463600 | 41030272 | 463600 | 479104 | 498180 | 301056 | yes | 49.8 | 48.0 |
| 192_1.0 | 4209088 | 418121728 | 4209088 | 4257424 | 4325748 | 884736 | no (ROM+RAM) | 70.0 | 69.2 |
| 192_0.75 | 2568144 | 239273472 | 2568144 | 2605536 | 2657444 | 663552 | no (ROM+RAM) | 67.2 | 66.1 |
| 192_0.5 | 1319648 | 109970432 | 1319648 | 1346096 | 1381588 | 442368 | yes | 61.7 | 60.0 |
| 192_0.25 | 463600 | 30212608 | 463600 | 479104 | 498180 | 221184 | yes | 47.7 | 46.0 |
| 160_1.0 | 4209088 | 290675200 | 4209088 | 4257424 | 4325748 | 614400 | no (ROM+RAM) | 68.0 | 67.2 |
| 160_0.75 | 2568144 | 166396800 | 2568144 | 2605536 | 2657444 | 460800 | no (ROM) | 65.3 | 62.3 |
| 160_0.5 | 1319648 | 76524800 | 1319648 | 1346096 | 1381588 | 307200 | yes | 59.1 | 57.7 |
| 160_0.25 | 463600 | 21059200 | 463600 | 479104 | 498180 | 153600 | yes | 45.5 | 43.4 |
| 128_1.0 | 4209088 | 186400768 | 4209088 | 4257424 | 4325748 | 393216 | no (ROM) | 65.2 | 63.4 |
| 128_0.75 | 2568144 | 106770432 | 2568144 | 2605536 | 2657444 | 294912 | no (ROM) | 62.1 | 55.8 |
| 128_0.5 | 1319648 | 49160192 | 1319648 | 1346096 | 1381588 | 196608 | yes | 56.3 | 54.5 |
| 128_0.25 | 463600 | 13570048 | 463600 | 479104 | 498180 | 98304 | yes | 41.5 | 39.5 |
";

/// §7.2: config | feasible | a_out | w | w-avg | weight bytes | PL ROM (extra) | PC ROM (extra) | peak RAM | cuts
const TABLE_7_2: &str = "
| 224_1.0 | yes | 442844488888888888888888888 | 8888888888888848484848884822 | 3.551 | 1868224 | 1939504 (71280) | 1984884 (116660) | 401408 | 26->4 27->4 24->4 26->2 27->2 14->4 16->4 18->4 20->4 |
| 224_0.75 | yes | 844884888888888888888888888 | 8888888888888888888888888844 | 5.885 | 1889232 | 1931272 (42040) | 1978532 (89300) | 451584 | 27->4 26->4 |
| 224_0.5 | yes | 884888888888888888888888888 | 8888888888888888888888888888 | 8.000 | 1319648 | 1346096 (26448) | 1381588 (61940) | 401408 | - |
| 224_0.25 | yes | 888888888888888888888888888 | 8888888888888888888888888888 | 8.000 | 463600 | 479104 (15504) | 498180 (34580) | 301056 | - |
| 192_1.0 | yes | 844884888888888888888888888 | 8888888888888848484848884822 | 3.551 | 1868224 | 1938088 (69864) | 1984884 (116660) | 442368 | 26->4 27->4 24->4 26->2 27->2 14->4 16->4 18->4 20->4 |
| 192_0.75 | yes | 884888888888888888888888888 | 8888888888888888888888888844 | 5.885 | 1889232 | 1930688 (41456) | 1978532 (89300) | 442368 | 27->4 26->4 |
| 192_0.5 | yes | 888888888888888888888888888 | 8888888888888888888888888888 | 8.000 | 1319648 | 1346096 (26448) | 1381588 (61940) | 442368 | - |
| 192_0.25 | yes | 888888888888888888888888888 | 8888888888888888888888888888 | 8.000 | 463600 | 479104 (15504) | 498180 (34580) | 221184 | - |
| 160_1.0 | yes | 884888888888888888888888888 | 8888888888888848484848884822 | 3.551 | 1868224 | 1937304 (69080) | 1984884 (116660) | 409600 | 26->4 27->4 24->4 26->2 27->2 14->4 16->4 18->4 20->4 |
| 160_0.75 | yes | 888888888888888888888888888 | 8888888888888888888888888844 | 5.885 | 1889232 | 1930456 (41224) | 1978532 (89300) | 460800 | 27->4 26->4 |
| 160_0.5 | yes | 888888888888888888888888888 | 8888888888888888888888888888 | 8.000 | 1319648 | 1346096 (26448) | 1381588 (61940) | 307200 | - |
| 160_0.25 | yes | 888888888888888888888888888 | 8888888888888888888888888888 | 8.000 | 463600 | 479104 (15504) | 498180 (34580) | 153600 | - |
| 128_1.0 | yes | 888888888888888888888888888 | 8888888888888848484848884822 | 3.551 | 1868224 | 1936992 (68768) | 1984884 (116660) | 393216 | 26->4 27->4 24->4 26->2 27->2 14->4 16->4 18->4 20->4 |
| 128_0.75 | yes | 888888888888888888888888888 | 8888888888888888888888888844 | 5.885 | 1889232 | 1930456 (41224) | 1978532 (89300) | 294912 | 27->4 26->4 |
| 128_0.5 | yes | 888888888888888888888888888 | 8888888888888888888888888888 | 8.000 | 1319648 | 1346096 (26448) | 1381588 (61940) | 196608 | - |
| 128_0.25 | yes | 888888888888888888888888888 | 8888888888888888888888888888 | 8.000 | 463600 | 479104 (15504) | 498180 (34580) | 98304 | - |
";

/// §7.3, 224_0.75 MixPC per layer.
const TABLE_7_3_224_075: &str = "
| 1 | conv/s2 | 3->24 | 224->112 | 150528 | 301056 | 648 | 8128512 | 8 | 8 | 8 | 648 | 248 | PC+ICN | 451584 |
| 2 | dw | 24->24 | 112->112 | 301056 | 301056 | 216 | 2709504 | 8 | 4 | 8 | 216 | 248 | PC+ICN | 451584 |
| 3 | pw | 24->48 | 112->112 | 301056 | 602112 | 1152 | 14450688 | 4 | 4 | 8 | 1152 | 488 | PC+ICN | 451584 |
| 4 | dw/s2 | 48->48 | 112->56 | 602112 | 150528 | 432 | 1354752 | 4 | 8 | 8 | 432 | 488 | PC+ICN | 451584 |
| 5 | pw | 48->96 | 56->56 | 150528 | 301056 | 4608 | 14450688 | 8 | 8 | 8 | 4608 | 968 | PC+ICN | 451584 |
| 6 | dw | 96->96 | 56->56 | 301056 | 301056 | 864 | 2709504 | 8 | 4 | 8 | 864 | 968 | PC+ICN | 451584 |
| 7 | pw | 96->96 | 56->56 | 301056 | 301056 | 9216 | 28901376 | 4 | 8 | 8 | 9216 | 968 | PC+ICN | 451584 |
| 8 | dw/s2 | 96->96 | 56->28 | 301056 | 75264 | 864 | 677376 | 8 | 8 | 8 | 864 | 968 | PC+ICN | 376320 |
| 9 | pw | 96->192 | 28->28 | 75264 | 150528 | 18432 | 14450688 | 8 | 8 | 8 | 18432 | 1928 | PC+ICN | 225792 |
| 10 | dw | 192->192 | 28->28 | 150528 | 150528 | 1728 | 1354752 | 8 | 8 | 8 | 1728 | 1928 | PC+ICN | 301056 |
| 11 | pw | 192->192 | 28->28 | 150528 | 150528 | 36864 | 28901376 | 8 | 8 | 8 | 36864 | 1928 | PC+ICN | 301056 |
| 12 | dw/s2 | 192->192 | 28->14 | 150528 | 37632 | 1728 | 338688 | 8 | 8 | 8 | 1728 | 1928 | PC+ICN | 188160 |
| 13 | pw | 192->384 | 14->14 | 37632 | 75264 | 73728 | 14450688 | 8 | 8 | 8 | 73728 | 3848 | PC+ICN | 112896 |
| 14 | dw | 384->384 | 14->14 | 75264 | 75264 | 3456 | 677376 | 8 | 8 | 8 | 3456 | 3848 | PC+ICN | 150528 |
| 15 | pw | 384->384 | 14->14 | 75264 | 75264 | 147456 | 28901376 | 8 | 8 | 8 | 147456 | 3848 | PC+ICN | 150528 |
| 16 | dw | 384->384 | 14->14 | 75264 | 75264 | 3456 | 677376 | 8 | 8 | 8 | 3456 | 3848 | PC+ICN | 150528 |
| 17 | pw | 384->384 | 14->14 | 75264 | 75264 | 147456 | 28901376 | 8 | 8 | 8 | 147456 | 3848 | PC+ICN | 150528 |
| 18 | dw | 384->384 | 14->14 | 75264 | 75264 | 3456 | 677376 | 8 | 8 | 8 | 3456 | 3848 | PC+ICN | 150528 |
| 19 | pw | 384->384 | 14->14 | 75264 | 75264 | 147456 | 28901376 | 8 | 8 | 8 | 147456 | 3848 | PC+ICN | 150528 |
| 20 | dw | 384->384 | 14->14 | 75264 | 75264 | 3456 | 677376 | 8 | 8 | 8 | 3456 | 3848 | PC+ICN | 150528 |
| 21 | pw | 384->384 | 14->14 | 75264 | 75264 | 147456 | 28901376 | 8 | 8 | 8 | 147456 | 3848 | PC+ICN | 150528 |
| 22 | dw | 384->384 | 14->14 | 75264 | 75264 | 3456 | 677376 | 8 | 8 | 8 | 3456 | 3848 | PC+ICN | 150528 |
| 23 | pw | 384->384 | 14->14 | 75264 | 75264 | 147456 | 28901376 | 8 | 8 | 8 | 147456 | 3848 | PC+ICN | 150528 |
| 24 | dw/s2 | 384->384 | 14->7 | 75264 | 18816 | 3456 | 169344 | 8 | 8 | 8 | 3456 | 3848 | PC+ICN | 94080 |
| 25 | pw | 384->768 | 7->7 | 18816 | 37632 | 294912 | 14450688 | 8 | 8 | 8 | 294912 | 7688 | PC+ICN | 56448 |
| 26 | dw | 768->768 | 7->7 | 37632 | 37632 | 6912 | 338688 | 8 | 8 | 8 | 6912 | 7688 | PC+ICN | 75264 |
| 27 | pw | 768->768 | 7->7 | 37632 | 37632 | 589824 | 28901376 | 8 | 8 | 4 | 294912 | 7688 | PC+ICN | 75264 |
| 28 | fc | 768->1000 | 1->1 | 768 | 1000 | 768000 | 768000 | 8 | 8 | 4 | 384000 | 7004 | PC+ICN | 1768 |
";

/// §7.3, 224_1.0 MixPC per layer.
const TABLE_7_3_224_100: &str = "
| 1 | conv/s2 | 3->32 | 224->112 | 150528 | 401408 | 864 | 10838016 | 8 | 4 | 8 | 864 | 328 | PC+ICN | 351232 |
| 2 | dw | 32->32 | 112->112 | 401408 | 401408 | 288 | 3612672 | 4 | 4 | 8 | 288 | 328 | PC+ICN | 401408 |
| 3 | pw | 32->64 | 112->112 | 401408 | 802816 | 2048 | 25690112 | 4 | 2 | 8 | 2048 | 648 | PC+ICN | 401408 |
| 4 | dw/s2 | 64->64 | 112->56 | 802816 | 200704 | 576 | 1806336 | 2 | 8 | 8 | 576 | 648 | PC+ICN | 401408 |
| 5 | pw | 64->128 | 56->56 | 200704 | 401408 | 8192 | 25690112 | 8 | 4 | 8 | 8192 | 1288 | PC+ICN | 401408 |
| 6 | dw | 128->128 | 56->56 | 401408 | 401408 | 1152 | 3612672 | 4 | 4 | 8 | 1152 | 1288 | PC+ICN | 401408 |
| 7 | pw | 128->128 | 56->56 | 401408 | 401408 | 16384 | 51380224 | 4 | 4 | 8 | 16384 | 1288 | PC+ICN | 401408 |
| 8 | dw/s2 | 128->128 | 56->28 | 401408 | 100352 | 1152 | 903168 | 4 | 8 | 8 | 1152 | 1288 | PC+ICN | 301056 |
| 9 | pw | 128->256 | 28->28 | 100352 | 200704 | 32768 | 25690112 | 8 | 8 | 8 | 32768 | 2568 | PC+ICN | 301056 |
| 10 | dw | 256->256 | 28->28 | 200704 | 200704 | 2304 | 1806336 | 8 | 8 | 8 | 2304 | 2568 | PC+ICN | 401408 |
| 11 | pw | 256->256 | 28->28 | 200704 | 200704 | 65536 | 51380224 | 8 | 8 | 8 | 65536 | 2568 | PC+ICN | 401408 |
| 12 | dw/s2 | 256->256 | 28->14 | 200704 | 50176 | 2304 | 451584 | 8 | 8 | 8 | 2304 | 2568 | PC+ICN | 250880 |
| 13 | pw | 256->512 | 14->14 | 50176 | 100352 | 131072 | 25690112 | 8 | 8 | 8 | 131072 | 5128 | PC+ICN | 150528 |
| 14 | dw | 512->512 | 14->14 | 100352 | 100352 | 4608 | 903168 | 8 | 8 | 8 | 4608 | 5128 | PC+ICN | 200704 |
| 15 | pw | 512->512 | 14->14 | 100352 | 100352 | 262144 | 51380224 | 8 | 8 | 4 | 131072 | 5128 | PC+ICN | 200704 |
| 16 | dw | 512->512 | 14->14 | 100352 | 100352 | 4608 | 903168 | 8 | 8 | 8 | 4608 | 5128 | PC+ICN | 200704 |
| 17 | pw | 512->512 | 14->14 | 100352 | 100352 | 262144 | 51380224 | 8 | 8 | 4 | 131072 | 5128 | PC+ICN | 200704 |
| 18 | dw | 512->512 | 14->14 | 100352 | 100352 | 4608 | 903168 | 8 | 8 | 8 | 4608 | 5128 | PC+ICN | 200704 |
| 19 | pw | 512->512 | 14->14 | 100352 | 100352 | 262144 | 51380224 | 8 | 8 | 4 | 131072 | 5128 | PC+ICN | 200704 |
| 20 | dw | 512->512 | 14->14 | 100352 | 100352 | 4608 | 903168 | 8 | 8 | 8 | 4608 | 5128 | PC+ICN | 200704 |
| 21 | pw | 512->512 | 14->14 | 100352 | 100352 | 262144 | 51380224 | 8 | 8 | 4 | 131072 | 5128 | PC+ICN | 200704 |
| 22 | dw | 512->512 | 14->14 | 100352 | 100352 | 4608 | 903168 | 8 | 8 | 8 | 4608 | 5128 | PC+ICN | 200704 |
| 23 | pw | 512->512 | 14->14 | 100352 | 100352 | 262144 | 51380224 | 8 | 8 | 8 | 262144 | 5128 | PC+ICN | 200704 |
| 24 | dw/s2 | 512->512 | 14->7 | 100352 | 25088 | 4608 | 225792 | 8 | 8 | 8 | 4608 | 5128 | PC+ICN | 125440 |
| 25 | pw | 512->1024 | 7->7 | 25088 | 50176 | 524288 | 25690112 | 8 | 8 | 4 | 262144 | 10248 | PC+ICN | 75264 |
| 26 | dw | 1024->1024 | 7->7 | 50176 | 50176 | 9216 | 451584 | 8 | 8 | 8 | 9216 | 10248 | PC+ICN | 100352 |
| 27 | pw | 1024->1024 | 7->7 | 50176 | 50176 | 1048576 | 51380224 | 8 | 8 | 2 | 262144 | 10248 | PC+ICN | 100352 |
| 28 | fc | 1024->1000 | 1->1 | 1024 | 1000 | 1024000 | 1024000 | 8 | 8 | 2 | 256000 | 7004 | PC+ICN | 2024 |
";

/// §10.1 proxy (base 8): cfg | params | MACs | ROM8 PC | peak RAM8 | fits8 | PL a/w/ROM | PC w/ROM
const TABLE_10_1: &str = "
| 28_1.0 | 210016 | 751984 | 237666 | 4704 | no | 442844488488888888888888888 / 8888888888482828484848482828 / 102136 | 8888888888482828282828482828 / 98402 |
| 28_0.75 | 120720 | 440724 | 141530 | 3528 | no | 844884888888888888888888888 / 8888888888888888888888884828 / 94754 | 8888888888888848888888884828 / 100058 |
| 28_0.5 | 55952 | 211640 | 69922 | 2352 | no | 884888888888888888888888888 / 8888888888888888888888888888 / 62024 | 8888888888888888888888888888 / 69922 |
| 28_0.25 | 15712 | 64732 | 22842 | 1176 | yes | 888888888888888888888888888 / 8888888888888888888888888888 / 19048 | 8888888888888888888888888888 / 22842 |
| 24_1.0 | 210016 | 663200 | 237666 | 3456 | no | 844884888888888888888888888 / 8888888888482828484848482828 / 101488 | 8888888888482828282828482828 / 98402 |
| 24_0.75 | 120720 | 387192 | 141530 | 2592 | no | 884888888888888888888888888 / 8888888888888888888888884828 / 94620 | 8888888888888848888888884828 / 100058 |
| 24_0.5 | 55952 | 184656 | 69922 | 1728 | yes | 888888888888888888888888888 / 8888888888888888888888888888 / 62024 | 8888888888888888888888888888 / 69922 |
| 24_0.25 | 15712 | 55592 | 22842 | 864 | yes | 888888888888888888888888888 / 8888888888888888888888888888 / 19048 | 8888888888888888888888888888 / 22842 |
| 20_1.0 | 210016 | 629584 | 237666 | 2400 | no | 884888888888888888888888888 / 8888888888482828484848482828 / 101304 | 8888888888482828282828482828 / 98402 |
| 20_0.75 | 120720 | 366204 | 141530 | 1800 | no | 888888888888888888888888888 / 8888888888888888888888884828 / 94568 | 8888888888888848888888884828 / 100058 |
| 20_0.5 | 55952 | 173480 | 69922 | 1200 | yes | 888888888888888888888888888 / 8888888888888888888888888888 / 62024 | 8888888888888888888888888888 / 69922 |
| 20_0.25 | 15712 | 51412 | 22842 | 600 | yes | 888888888888888888888888888 / 8888888888888888888888888888 / 19048 | 8888888888888888888888888888 / 22842 |
| 16_1.0 | 210016 | 277696 | 237666 | 1536 | no | 888888888888888888888888888 / 8888888888482828484848482828 / 101232 | 8888888888482828282828482828 / 98402 |
| 16_0.75 | 120720 | 162192 | 141530 | 1152 | no | 888888888888888888888888888 / 8888888888888888888888884828 / 94568 | 8888888888888848888888884828 / 100058 |
| 16_0.5 | 55952 | 77408 | 69922 | 768 | yes | 888888888888888888888888888 / 8888888888888888888888888888 / 62024 | 8888888888888888888888888888 / 69922 |
| 16_0.25 | 15712 | 23344 | 22842 | 384 | yes | 888888888888888888888888888 / 8888888888888888888888888888 / 19048 | 8888888888888888888888888888 / 22842 |
";

fn assign_official(
    model: &MobileNetV1,
    budget: Budget,
    g: Granularity,
) -> mixed_precision_mcu::assign::Assignment {
    assign(&model.layers(), budget, AssignOptions::official(g))
        .unwrap_or_else(|e| panic!("{model} {g}: {e}"))
}

#[test]
fn table_7_1_uniform_8bit_footprints_of_all_16_configs() {
    let mut seen = 0;
    for row in rows(TABLE_7_1) {
        let model = parse_config(row[0], MobileNetV1::imagenet);
        let layers = model.layers();
        assert_eq!(layers.len(), 28);
        assert_eq!(model.params(), num(row[1]), "{model} params");
        assert_eq!(model.macs(), num(row[2]), "{model} MACs");
        let pl = uniform8(&layers, Granularity::PerLayer);
        let pc = uniform8(&layers, Granularity::PerChannel);
        assert_eq!(pl.weight_bytes, num(row[3]), "{model} weight bytes");
        assert_eq!(pl.rom_bytes(), num(row[4]), "{model} ROM8 PL");
        assert_eq!(pc.rom_bytes(), num(row[5]), "{model} ROM8 PC");
        assert_eq!(pl.peak_ram(), num(row[6]), "{model} peak RAM8");
        // The peak is always the first pointwise layer (layer 3).
        let peak_layer = pl.per_layer_ram.iter().position(|&r| r == pl.peak_ram());
        assert_eq!(peak_layer, Some(2), "{model} peak layer");
        let rom_ok = pl.rom_bytes() <= Budget::STM32H7.rom;
        let ram_ok = pl.peak_ram() <= Budget::STM32H7.ram;
        let verdict = match (rom_ok, ram_ok) {
            (true, true) => "yes",
            (false, false) => "no (ROM+RAM)",
            (false, true) => "no (ROM)",
            (true, false) => "no (RAM)",
        };
        assert_eq!(verdict, row[7], "{model} fits");
        seen += 1;
    }
    assert_eq!(seen, 16);
    assert_eq!(imagenet_family().len(), 16);
}

#[test]
fn table_7_2_assignment_at_2048000_512000_for_both_granularities() {
    let mut seen = 0;
    for row in rows(TABLE_7_2) {
        let model = parse_config(row[0], MobileNetV1::imagenet);
        let (pl_rom, pl_extra) = rom_extra(row[6]);
        let (pc_rom, pc_extra) = rom_extra(row[7]);
        for (g, rom, extra) in [
            (Granularity::PerLayer, pl_rom, pl_extra),
            (Granularity::PerChannel, pc_rom, pc_extra),
        ] {
            let a = assign_official(&model, Budget::STM32H7, g);
            let f = a.footprint();
            assert_eq!(a.bits.a_out_string(), row[2], "{model} {g} a_out");
            assert_eq!(a.bits.w_string(), row[3], "{model} {g} w");
            assert_eq!(
                format!("{:.3}", a.weight_avg_bits()),
                row[4],
                "{model} {g} w-avg"
            );
            assert_eq!(f.weight_bytes, num(row[5]), "{model} {g} weight bytes");
            assert_eq!(f.rom_bytes(), rom, "{model} {g} ROM");
            assert_eq!(f.extra_bytes, extra, "{model} {g} extra");
            assert_eq!(f.peak_ram(), num(row[8]), "{model} {g} peak RAM");
            assert_eq!(a.cut_order_string(), row[9], "{model} {g} cut order");
            assert!(f.fits(Budget::STM32H7));
        }
        seen += 1;
    }
    assert_eq!(seen, 16);
}

#[test]
fn table_7_2_mixpl_fold_strings() {
    for (cfg, folds) in [
        ("224_1.0", "IIIFIIIFFFFFFFIFIFIFIFFFIFII"),
        ("224_0.75", "FIIFFIFFFFFFFFFFFFFFFFFFFFII"),
    ] {
        let model = parse_config(cfg, MobileNetV1::imagenet);
        let a = assign_official(&model, Budget::STM32H7, Granularity::PerLayer);
        assert_eq!(a.fold_string(), folds, "{cfg}");
    }
    // No weight cut: the code's single ROM evaluation leaves every layer FB (§9.2), also where the
    // firmware of 224_0.5 uses ICN at layer 3.
    let a = assign_official(
        &MobileNetV1::imagenet(224, 0.5),
        Budget::STM32H7,
        Granularity::PerLayer,
    );
    assert!(a.folds.iter().all(|&f| f == Fold::FoldBn));
    let a = assign_official(
        &MobileNetV1::imagenet(224, 0.5),
        Budget::STM32H7,
        Granularity::PerChannel,
    );
    assert!(a.folds.iter().all(|&f| f == Fold::Icn));
}

fn check_per_layer_table(cfg: &str, table: &str) {
    let model = parse_config(cfg, MobileNetV1::imagenet);
    let a = assign_official(&model, Budget::STM32H7, Granularity::PerChannel);
    let f = a.footprint();
    let mut n = 0;
    for (i, row) in rows(table).enumerate() {
        let l = &a.layers[i];
        assert_eq!(num(row[0]), i as u64 + 1);
        let kind = l.kind.short();
        let kind = if l.stride == 2 {
            format!("{kind}/s2")
        } else {
            kind.to_string()
        };
        assert_eq!(kind, row[1], "{cfg} layer {}", i + 1);
        assert_eq!(
            format!("{}->{}", l.cin, l.cout),
            row[2],
            "{cfg} layer {} channels",
            i + 1
        );
        assert_eq!(
            format!("{}->{}", l.hw_in, l.hw_out),
            row[3],
            "{cfg} layer {} HW",
            i + 1
        );
        assert_eq!(l.in_elems, num(row[4]), "{cfg} layer {} in", i + 1);
        assert_eq!(l.out_elems, num(row[5]), "{cfg} layer {} out", i + 1);
        assert_eq!(l.weights, num(row[6]), "{cfg} layer {} W", i + 1);
        assert_eq!(l.macs, num(row[7]), "{cfg} layer {} MACs", i + 1);
        assert_eq!(
            u64::from(a.bits.a_in(i)),
            num(row[8]),
            "{cfg} layer {} a_in",
            i + 1
        );
        assert_eq!(
            u64::from(a.bits.a_out(i)),
            num(row[9]),
            "{cfg} layer {} a_out",
            i + 1
        );
        assert_eq!(
            u64::from(a.bits.weights[i]),
            num(row[10]),
            "{cfg} layer {} w",
            i + 1
        );
        assert_eq!(l.weights * u64::from(a.bits.weights[i]) / 8, num(row[11]));
        assert_eq!(
            f.per_layer_extra[i],
            num(row[12]),
            "{cfg} layer {} extra",
            i + 1
        );
        assert_eq!(a.folds[i], Fold::Icn);
        assert_eq!(row[13], "PC+ICN");
        assert_eq!(
            f.per_layer_ram[i],
            num(row[14]),
            "{cfg} layer {} RAM",
            i + 1
        );
        n += 1;
    }
    assert_eq!(n, 28);
}

#[test]
fn table_7_3_per_layer_detail_224_075_mixpc() {
    check_per_layer_table("224_0.75", TABLE_7_3_224_075);
    assert_eq!(MobileNetV1::imagenet(224, 0.75).macs(), 325_400_448);
}

#[test]
fn table_7_3_per_layer_detail_224_100_mixpc() {
    check_per_layer_table("224_1.0", TABLE_7_3_224_100);
}

#[test]
fn table_7_3_mixpl_extra_bytes_of_224_075() {
    let mut expected = vec![116, 228, 444, 212, 404, 876, 404, 404, 788, 788, 788, 788];
    expected.extend([1556; 12]);
    expected.extend([3092, 3092, 6924, 4020]);
    let a = assign_official(
        &MobileNetV1::imagenet(224, 0.75),
        Budget::STM32H7,
        Granularity::PerLayer,
    );
    let f = a.footprint();
    assert_eq!(f.per_layer_extra, expected);
    assert_eq!(f.extra_bytes, 42_040);
    assert_eq!(f.rom_bytes(), 1_931_272);
}

#[test]
fn section_7_5_power_of_two_budgets_keep_layer_21_at_8_bits_under_mixpl_width_1() {
    let pow2 = Budget {
        rom: 2_097_152,
        ram: 524_288,
    };
    for row in rows(TABLE_7_2) {
        let model = parse_config(row[0], MobileNetV1::imagenet);
        for g in [Granularity::PerLayer, Granularity::PerChannel] {
            let a = assign_official(&model, pow2, g);
            let mut w: Vec<char> = row[3].chars().collect();
            if g == Granularity::PerLayer && model.width == 1.0 {
                assert_eq!(w[20], '4');
                w[20] = '8';
            }
            assert_eq!(
                a.bits.w_string(),
                w.into_iter().collect::<String>(),
                "{model} {g}"
            );
            assert_eq!(a.bits.a_out_string(), row[2], "{model} {g}");
        }
    }
}

#[test]
fn table_10_1_proxy_family_and_scaled_budgets() {
    let largest_paper = MobileNetV1::imagenet(224, 1.0);
    let paper_peak = uniform8(&largest_paper.layers(), Granularity::PerLayer).peak_ram();
    let scaled = |base: usize| {
        let proxy = MobileNetV1::tiny(28, 1.0, base);
        let peak = uniform8(&proxy.layers(), Granularity::PerLayer).peak_ram();
        Budget::scaled(
            Budget::STM32H7,
            largest_paper.params(),
            paper_peak,
            proxy.params(),
            peak,
        )
    };
    assert_eq!(
        scaled(16),
        Budget {
            rom: 395_325,
            ram: 4_000
        }
    );
    let budget = scaled(8);
    assert_eq!(
        budget,
        Budget {
            rom: 102_187,
            ram: 2_000
        }
    );
    let mut seen = 0;
    for row in rows(TABLE_10_1) {
        let model = parse_config(row[0], |r, w| MobileNetV1::tiny(r, w, 8));
        let layers = model.layers();
        assert_eq!(model.params(), num(row[1]), "{model}");
        assert_eq!(model.macs(), num(row[2]), "{model}");
        let pc8 = uniform8(&layers, Granularity::PerChannel);
        assert_eq!(pc8.rom_bytes(), num(row[3]), "{model}");
        assert_eq!(pc8.peak_ram(), num(row[4]), "{model}");
        let pl8 = uniform8(&layers, Granularity::PerLayer);
        assert_eq!(
            if pl8.fits(budget) { "yes" } else { "no" },
            row[5],
            "{model}"
        );
        let pl: Vec<&str> = row[6].split(" / ").collect();
        let pc: Vec<&str> = row[7].split(" / ").collect();
        let a = assign_official(&model, budget, Granularity::PerLayer);
        assert_eq!(a.bits.a_out_string(), pl[0], "{model} PL a_out");
        assert_eq!(a.bits.w_string(), pl[1], "{model} PL w");
        assert_eq!(a.footprint().rom_bytes(), num(pl[2]), "{model} PL ROM");
        let a = assign_official(&model, budget, Granularity::PerChannel);
        assert_eq!(a.bits.a_out_string(), pl[0], "{model} PC a_out");
        assert_eq!(a.bits.w_string(), pc[0], "{model} PC w");
        assert_eq!(a.footprint().rom_bytes(), num(pc[1]), "{model} PC ROM");
        seen += 1;
    }
    assert_eq!(seen, 16);
    assert_eq!(tiny_family(8).len(), 16);
    // Weight-average bits quoted under the table for 28_1.0.
    let m = MobileNetV1::tiny(28, 1.0, 8);
    let pl = assign_official(&m, budget, Granularity::PerLayer).weight_avg_bits();
    let pc = assign_official(&m, budget, Granularity::PerChannel).weight_avg_bits();
    assert_eq!(
        (format!("{pl:.2}"), format!("{pc:.2}")),
        ("3.16".into(), "2.70".into())
    );
}

#[test]
fn tight_budgets_return_errors_naming_the_constraint_instead_of_hanging() {
    // 224_1.0 at 256 kB: layer 3 needs 301056 B even at 2/2 bits (§9.1).
    let e = assign(
        &MobileNetV1::imagenet(224, 1.0).layers(),
        Budget {
            rom: 1_024_000,
            ram: 256_000,
        },
        AssignOptions::official(Granularity::PerChannel),
    )
    .unwrap_err();
    assert_eq!(
        e,
        AssignError::Ram {
            layer: 2,
            kind: "pw",
            needed: 301_056,
            budget: 256_000
        }
    );
    assert!(
        e.to_string()
            .starts_with("RAM budget 256000 B is infeasible: layer 3 (pw)"),
        "{e}"
    );
    // Weights at 2 bits everywhere still exceed a 100 kB ROM for 224_1.0.
    let e = assign(
        &MobileNetV1::imagenet(224, 1.0).layers(),
        Budget {
            rom: 100_000,
            ram: 512_000,
        },
        AssignOptions::official(Granularity::PerLayer),
    )
    .unwrap_err();
    match e {
        AssignError::Rom { needed, budget } => {
            assert_eq!(budget, 100_000);
            assert!(needed >= 4_209_088 / 4, "{needed}");
        }
        other => panic!("expected a ROM error, got {other}"),
    }
    // Every configuration terminates at the tight budgets of §7.6 with either an assignment that fits
    // or an error.
    for budget in [
        Budget {
            rom: 1_024_000,
            ram: 256_000,
        },
        Budget {
            rom: 512_000,
            ram: 256_000,
        },
    ] {
        for model in imagenet_family() {
            for g in [Granularity::PerLayer, Granularity::PerChannel] {
                if let Ok(a) = assign(&model.layers(), budget, AssignOptions::official(g)) {
                    assert!(a.footprint().fits(budget), "{model} {g}");
                }
            }
        }
    }
}

#[test]
fn section_3_3_pc_needs_more_weight_cuts_than_pl_at_one_megabyte() {
    // At M_RO = 1024000 the width-0.75 models need two more weight cuts under PC (its 10n+8 extra bytes
    // per layer): layers 11 and 13 (1-based) go to 4 bits, which PL leaves at 8.
    let budget = Budget {
        rom: 1_024_000,
        ram: 512_000,
    };
    let model = MobileNetV1::imagenet(224, 0.75);
    let pl = assign_official(&model, budget, Granularity::PerLayer);
    let pc = assign_official(&model, budget, Granularity::PerChannel);
    assert_eq!(pc.cut_order.len(), pl.cut_order.len() + 2);
    assert_eq!(pc.cut_order[pl.cut_order.len()..], [(10, 4), (12, 4)]);
    assert_eq!(pl.bits.weights[10], 8);
    assert_eq!(pl.bits.weights[12], 8);
    assert_eq!(pc.bits.weights[10], 4);
    assert_eq!(pc.bits.weights[12], 4);
}

#[test]
fn thresholds_cost_far_more_read_only_memory_than_icn() {
    use mixed_precision_mcu::tables::thresholds_extra;
    let a = assign_official(
        &MobileNetV1::imagenet(224, 0.75),
        Budget::STM32H7,
        Granularity::PerChannel,
    );
    // 8-bit outputs need 255 int16 thresholds per channel (510 B) against ICN's 10 B.
    let layer1 = 24 * 255 * 2;
    let t = thresholds_extra(&a);
    assert!(t > 10 * a.footprint().extra_bytes, "{t}");
    assert!(t > layer1);
}
