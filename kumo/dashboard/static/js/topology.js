// Network topology page: fetch the graph as JSON and draw it with cytoscape.js.
(function () {
  var box = document.getElementById("topology");
  var list = document.getElementById("topology-list");
  var colors = { network: "#2560c8", external: "#1e7d3a", router: "#d9822b", instance: "#69707d" };
  var shapes = { network: "round-rectangle", external: "round-rectangle", router: "diamond", instance: "ellipse" };
  var levels = { external: 4, router: 3, network: 2, instance: 1 };
  var cy = null;
  function draw(graph) {
    var elements = graph.nodes.concat(graph.edges);
    if (cy) { cy.destroy(); }
    cy = cytoscape({
      container: box,
      elements: elements,
      style: [
        { selector: "node", style: {
          "label": "data(label)", "font-size": 11, "text-valign": "bottom", "text-margin-y": 4,
          "background-color": function (n) { return colors[n.data("kind")] || "#888"; },
          "shape": function (n) { return shapes[n.data("kind")] || "ellipse"; },
          "width": function (n) { return n.data("kind") === "instance" ? 22 : 34; },
          "height": function (n) { return n.data("kind") === "instance" ? 22 : 26; } } },
        { selector: "edge", style: { "width": 2, "line-color": "#aab3c2", "curve-style": "bezier",
          "label": "data(label)", "font-size": 9, "color": "#5a6376" } },
        { selector: "edge[kind = 'gateway']", style: { "line-style": "dashed", "line-color": "#1e7d3a" } }
      ],
      // force-directed for small graphs; rings by kind (cheap) for big ones
      layout: graph.nodes.length <= 80
        ? { name: "cose", animate: false, nodeRepulsion: 9000, idealEdgeLength: 80 }
        : { name: "concentric", animate: false, minNodeSpacing: 6,
            concentric: function (n) { return levels[n.data("kind")] || 0; }, levelWidth: function () { return 1; } }
    });
    box.setAttribute("data-nodes", graph.nodes.length);
    box.setAttribute("data-edges", graph.edges.length);
    list.textContent = "";
    graph.nodes.forEach(function (n) {
      var li = document.createElement("li");
      var links = graph.edges.filter(function (e) { return e.data.source === n.data.id; }).map(function (e) {
        var t = graph.nodes.filter(function (m) { return m.data.id === e.data.target; })[0];
        return t ? t.data.label : e.data.target;
      });
      li.textContent = n.data.kind + " " + n.data.label + (links.length ? " → " + links.join(", ") : "");
      li.setAttribute("data-kind", n.data.kind);
      list.appendChild(li);
    });
  }
  function load() {
    fetch(box.getAttribute("data-src"), { credentials: "same-origin" })
      .then(function (r) { if (!r.ok) { throw new Error("HTTP " + r.status); } return r.json(); })
      .then(draw)
      .catch(function (e) { box.textContent = "Could not load the topology: " + e.message; });
  }
  document.getElementById("topology-refresh").addEventListener("click", load);
  // cytoscape (430 kB) is fetched after the page has painted, so it never delays first content
  function start() {
    var lib = document.createElement("script");
    lib.src = box.getAttribute("data-lib");
    lib.async = true;
    lib.onload = load;
    lib.onerror = function () { box.textContent = "Could not load the graph library."; };
    document.head.appendChild(lib);
  }
  requestAnimationFrame(function () { setTimeout(start, 0); });  // after the first frame is painted
})();
