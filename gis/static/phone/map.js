// A small offline map: the worker's grid boundary (GeoJSON in CGCS2000 lon/lat) drawn as SVG, the
// phone's position with its accuracy, and a point picked with a tap. No tiles: the boundary is what a
// worker needs to say where inside the grid something is, and it works with no network at all.

const SVG = "http://www.w3.org/2000/svg";

function el(name, attributes = {}) {
  const node = document.createElementNS(SVG, name);
  for (const [key, value] of Object.entries(attributes)) node.setAttribute(key, value);
  return node;
}

function rings(geometry) {
  if (!geometry) return [];
  if (geometry.type === "Polygon") return geometry.coordinates;
  if (geometry.type === "MultiPolygon") return geometry.coordinates.flat();
  return [];
}

/** Draw ``features`` in ``container``; ``onPick({lon, lat})`` is called with a tapped point. */
export function gridMap(container, features, onPick) {
  const all = features.flatMap((f) => rings(f.geometry).flat());
  if (!all.length) {
    container.innerHTML = '<p class="muted small">没有网格边界数据，请联网后打开一次本页</p>';
    return null;
  }
  const lons = all.map((p) => p[0]);
  const lats = all.map((p) => p[1]);
  let [x0, x1, y0, y1] = [Math.min(...lons), Math.max(...lons), Math.min(...lats), Math.max(...lats)];
  const pad = Math.max(x1 - x0, y1 - y0) * 0.08 || 0.001;
  [x0, x1, y0, y1] = [x0 - pad, x1 + pad, y0 - pad, y1 + pad];
  // Equirectangular around the grid's latitude: true to scale at a grid's size.
  const k = Math.cos(((y0 + y1) / 2) * Math.PI / 180);
  const scale = 1e5;  // degrees → user units large enough for SVG precision
  const project = (lon, lat) => [(lon - x0) * k * scale, (y1 - lat) * scale];
  const unproject = (x, y) => ({ lon: x / (k * scale) + x0, lat: y1 - y / scale });
  const width = (x1 - x0) * k * scale;
  const height = (y1 - y0) * scale;
  const svg = el("svg", { viewBox: `0 0 ${width} ${height}`, preserveAspectRatio: "xMidYMid meet",
                          role: "img", "aria-label": "网格地图，点击选择事发位置" });
  for (const feature of features) {
    const d = rings(feature.geometry).map((ring) => "M" + ring.map((p) => project(...p).join(",")).join("L") + "Z")
      .join("");
    svg.appendChild(el("path", { d, class: "grid" }));
    const name = feature.properties && feature.properties.name;
    if (name) {
      const ring = rings(feature.geometry)[0];
      const cx = ring.reduce((s, p) => s + p[0], 0) / ring.length;
      const cy = ring.reduce((s, p) => s + p[1], 0) / ring.length;
      const [x, y] = project(cx, cy);
      const label = el("text", { x, y, class: "label", "text-anchor": "middle",
                                 "font-size": String(height / 18) });
      label.textContent = name;
      svg.appendChild(label);
    }
  }
  const halo = el("circle", { class: "halo", r: 0, visibility: "hidden" });
  const me = el("circle", { class: "me", r: height / 45, visibility: "hidden" });
  const pick = el("circle", { class: "pick", r: height / 35, visibility: "hidden" });
  svg.append(halo, me, pick);
  svg.addEventListener("click", (event) => {
    const matrix = svg.getScreenCTM();
    if (!matrix) return;
    const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
    const where = unproject(point.x, point.y);
    pick.setAttribute("cx", point.x);
    pick.setAttribute("cy", point.y);
    pick.setAttribute("visibility", "visible");
    onPick(where);
  });
  container.replaceChildren(svg);
  return {
    showPosition(lon, lat, accuracy) {
      const [x, y] = project(lon, lat);
      me.setAttribute("cx", x); me.setAttribute("cy", y); me.setAttribute("visibility", "visible");
      halo.setAttribute("cx", x); halo.setAttribute("cy", y);
      halo.setAttribute("r", ((accuracy || 0) / 111320) * scale);
      halo.setAttribute("visibility", accuracy ? "visible" : "hidden");
    },
    clearPick() { pick.setAttribute("visibility", "hidden"); },
  };
}
