"""Benchmark outputs: JSON (machine-readable), a Markdown table and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path

PEER_ORDER = ["rasteret", "rasteret-0.4.1", "async-geotiff", "gdal-threads", "rasterio-naive"]
LABEL = {
    "rasterio-naive": "rasterio sequential (GDAL defaults)",
    "gdal-threads": "rasterio/GDAL tuned + threads",
    "async-geotiff": "async-geotiff (obstore)",
    "rasteret-0.4.1": "Rasteret 0.4.1",
    "rasteret": "rasteret (this project)",
}


def _fmt(v, spec: str, dash: str = "-") -> str:
    return dash if v is None else format(v, spec)


def markdown(results: dict) -> str:
    lat = results["server"]["latency_s"]
    lines = [
        f"Benchmark `{results['name']}` ({results['mode']} mode, {results['date']}): "
        f"{results['data']['size']}x{results['data']['size']} uint16 COGs, {results['data']['tile']}px tiles, "
        + (f"latency {lat[0] * 1000:.0f} ms, " if lat[0] == lat[1] else f"latency U({lat[0] * 1000:.0f}, {lat[1] * 1000:.0f}) ms, ")
        + f"{results['server']['bandwidth_Bps'] / 1e6:.0f} MB/s "
        f"per connection, {results['machine']['cpus']} cores. Wall = median of timed runs (warm-up excluded), "
        "each peer x workload in a fresh process; `vs ours` = peer time / rasteret time; "
        "`x limit` = wall / physical limit; `CPU x floor` = the peer's CPU time / the client-side CPU no "
        "reader can avoid (decoding these tiles + receiving their bytes), the figure that stays meaningful "
        "when other processes compete for the cores.",
        "",
    ]
    load = max(results.get("max_load", 0.0), results.get("load_at_start", 0.0))
    lines += [f"1-minute load average: {results.get('load_at_start', 0.0):.1f} at the start, up to "
              f"{results.get('max_load', 0.0):.1f} before a run (the benchmark's own threads count in it).", ""]
    other = results.get("other_cpu")
    if other is not None:
        lines += [f"While the workers ran ({other['wall_s']:.0f} s), other processes used {other['other_s']:.1f} CPU-s "
                  f"and the hypervisor took {other['steal_s']:.1f} CPU-s: {other['share_of_cores']:.1%} of the "
                  f"{other['cores']} cores.", ""]
        if other["share_of_cores"] > 0.05:
            lines += ["**Warning:** more than 5 % of the cores went to other work: timings are noisy.", ""]
    elif load > 1.5 * results["machine"]["cpus"]:  # older results: the load average is all there is
        lines += [f"**Warning:** the 1-minute load average reached {load:.1f} on {results['machine']['cpus']} cores "
                  "before some runs (the benchmark itself accounts for about 2): other processes were competing "
                  "for the CPU, timings are noisy.", ""]
    lines += [
        "| workload | peer | status | wall s | vs ours | x limit | requests | MB | CPU s | CPU x floor | server CPU s | peak RSS MB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for wname, w in results["workloads"].items():
        lim = w["limit"]
        cpu = lim.get("cpu_components_s", {})
        floor = cpu.get("decode", 0.0) + cpu.get("client_transport", 0.0)  # the client's own unavoidable CPU
        lines.append(f"| **{wname}** | *physical limit* | | {lim['limit_s']:.3f} | | 1.0 | {lim['requests']} | "
                     f"{lim['bytes'] / 1e6:.1f} | {_fmt(floor or None, '.2f', '')} | 1.0 | "
                     f"{_fmt(cpu.get('server') or None, '.2f', '')} | |")
        for peer in PEER_ORDER:
            s = w["peers"].get(peer)
            if s is None:
                continue
            if s.get("status") != "ok":
                note = s.get("note", "").replace("|", "/")[:120]
                lines.append(f"| {wname} | {LABEL[peer]} | {s.get('status')}: {note} | | | | "
                             f"{s.get('requests', '')} | {_fmt(s.get('bytes') and s['bytes'] / 1e6, '.1f', '')} | | | | |")
                continue
            lines.append(
                f"| {wname} | {LABEL[peer]} | ok | {s['wall_s']:.3f} | {_fmt(s.get('vs_rasteret'), '.2f')}x | "
                f"{_fmt(s.get('x_limit'), '.1f')} | {s['requests']} | {s['bytes'] / 1e6:.1f} | {s['cpu_s']:.2f} | "
                f"{_fmt(s['cpu_s'] / floor if floor else None, '.2f')} | {_fmt(s.get('server_cpu_s'), '.2f')} | "
                f"{s['peak_rss_mb']:.0f} |"
            )
    lines += ["", "Measured limit = first byte + max(latency, bandwidth, CPU / cores); CPU = decoding with the "
              "reader's decoder on these tiles + the client's and the server's CPU to move the bytes (measured with "
              "a lean keep-alive client fetching the reader's own coalesced requests; client and server share the "
              "cores). `server CPU s` above is what the server spent per repetition while each peer ran:", "",
              "| workload | limit s | first byte s | latency s | bandwidth s | CPU s | decode CPU s | ms/tile | "
              "client transport CPU s | server CPU s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for wname, w in results["workloads"].items():
        lim = w["limit"]
        if "@" in wname:
            continue
        cpu = lim.get("cpu_components_s", {})
        per_tile = lim.get("decode_s_per_tile")
        lines.append(f"| {wname} | {lim['limit_s']:.3f} | {lim.get('first_byte_s', 0):.3f} | {lim['latency_s']:.3f} | "
                     f"{lim['bandwidth_s']:.3f} | {lim.get('cpu_s', 0):.3f} | {cpu.get('decode', 0):.3f} | "
                     f"{_fmt(per_tile and per_tile * 1000, '.2f')} | {cpu.get('client_transport', 0):.3f} | "
                     f"{cpu.get('server', 0):.3f} |")
    for peer, why in results.get("skipped", {}).items():
        lines.append(f"\nSkipped {LABEL.get(peer, peer)}: {why}")
    if results.get("scaling"):
        lines += ["", "Scaling (AOI time series; K = AOIs, T = dates):", "",
                  "| peer | K | T | wall s | peak RSS MB | RSS growth MB | output MB | requests |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for peer, axes in results["scaling"].items():
            for axis in ("K", "T"):
                for p in axes.get(axis, []):
                    lines.append(f"| {LABEL[peer]} | {p['K']} | {p['T']} | {p['wall_s']:.3f} | {p['peak_rss_mb']:.0f} | "
                                 f"{p['rss_growth_mb']:.0f} | {p['output_mb']:.1f} | {p['requests']} |")
    lines += ["", "Targets (printed, not asserted):", ""]
    for t in results.get("targets", []):
        lines.append(f"- **{t['status']}** {t['target']}: {t['detail']}")
    return "\n".join(lines) + "\n"


def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(17, 5.2))
    ax = axes[0]
    wnames = list(results["workloads"])
    peers = [p for p in PEER_ORDER if any(p in w["peers"] for w in results["workloads"].values())]
    width = 0.8 / max(1, len(peers) + 1)
    for i, peer in enumerate(peers):
        xs, ys = [], []
        for j, wname in enumerate(wnames):
            s = results["workloads"][wname]["peers"].get(peer, {})
            if s.get("status") == "ok":
                xs.append(j + i * width)
                ys.append(s["wall_s"])
        ax.bar(xs, ys, width, label=LABEL[peer])
    lim_x = [j + len(peers) * width for j in range(len(wnames))]
    ax.bar(lim_x, [results["workloads"][w]["limit"]["limit_s"] for w in wnames], width, label="physical limit",
           color="lightgrey", hatch="//")
    ax.set_xticks([j + len(peers) * width / 2 for j in range(len(wnames))], wnames)
    ax.set_yscale("log")
    ax.set_ylabel("wall time, s (median, log scale)")
    ax.set_title("Wall time per workload")
    ax.legend(fontsize=7)

    markers = {"K": "o-", "T": "s--"}
    for peer, axes_data in results.get("scaling", {}).items():
        for axis, points in axes_data.items():
            if not points:
                continue
            xs = [p["n"] for p in points]
            axes[1].plot(xs, [p["wall_s"] for p in points], markers[axis], label=f"{LABEL[peer]}: vs {axis}")
            axes[2].plot(xs, [p["rss_growth_mb"] for p in points], markers[axis], label=f"{LABEL[peer]}: vs {axis}")
            axes[2].plot(xs, [p["output_mb"] for p in points], ":", color="grey")
    axes[1].set_title("AOI time series: time vs K (AOIs) and T (dates)")
    axes[1].set_xlabel("K or T")
    axes[1].set_ylabel("wall time, s")
    axes[1].legend(fontsize=7)
    axes[2].set_title("Memory: RSS growth during the read (dotted: output size)")
    axes[2].set_xlabel("K or T")
    axes[2].set_ylabel("MB")
    axes[2].legend(fontsize=7)
    fig.suptitle(f"rasteret benchmark ({results['mode']}): {results['data']['size']}px Sentinel-2-like COGs, "
                 f"{results['server']['latency_s'][0] * 1000:.0f}-{results['server']['latency_s'][1] * 1000:.0f} ms latency")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_outputs(results: dict, folder: Path) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    name = results["name"]
    paths = {"json": folder / f"{name}.json", "md": folder / f"{name}.md", "png": folder / f"{name}.png"}
    paths["json"].write_text(json.dumps(results, indent=1))
    table = markdown(results)
    paths["md"].write_text(table)
    try:
        chart(results, paths["png"])
    except ImportError as exc:
        paths.pop("png")
        table += f"\n(no chart: {exc}; `make bench` installs matplotlib)\n"
    return {**paths, "table": table}
