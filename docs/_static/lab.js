/* The lecture lab (docs/lab.md): draws optimizer paths computed when the
   site was built (lab_data.js, written by docs/_ext/lab.py with the
   package's optimizer classes). This script only draws: it reads the
   stored grid integers of the chosen setting and writes them into SVG
   polylines. It makes no network request and loads no library. */
(function () {
  "use strict";

  var SVG_NS = "http://www.w3.org/2000/svg";
  // Colour and line style of each optimizer. Methods whose paths often
  // coincide (SGD, Momentum, Nesterov; Adagrad, RMSprop, Adadelta; Adam,
  // Adamax, Nadam) differ in dash pattern and width as well as in colour:
  // the solid line is drawn first and widest, the dashed and dotted ones
  // on top of it, so each stays visible where they overlap.
  var STYLES = {
    SGD: ["#1f77b4", "solid"],
    Momentum: ["#ff7f0e", "dashed"],
    Nesterov: ["#2ca02c", "dotted"],
    Adagrad: ["#d62728", "solid"],
    RMSprop: ["#9467bd", "dashed"],
    Adadelta: ["#8c564b", "dotted"],
    Adam: ["#e377c2", "solid"],
    Adamax: ["#7f7f7f", "dashed"],
    Nadam: ["#bcbd22", "dotted"],
    DeltaBarDelta: ["#17becf", "solid"],
    Rprop: ["#393b79", "dashed"]
  };
  var DASHES = { solid: "", dashed: "22 12", dotted: "1 11" };
  var WIDTHS = { solid: 11, dashed: 6, dotted: 8 };
  var DRAW_ORDER = { solid: 0, dashed: 1, dotted: 2 };
  var DEFAULT = {
    surface: "quadratic",
    optimizers: ["SGD", "Momentum", "Adam"],
    rate: 0.0562,
    momentum: 0.9
  };

  function element(name, attributes, parent) {
    var node = document.createElement(name);
    setAttributes(node, attributes);
    if (parent) parent.appendChild(node);
    return node;
  }

  function svgElement(name, attributes, parent) {
    var node = document.createElementNS(SVG_NS, name);
    setAttributes(node, attributes);
    if (parent) parent.appendChild(node);
    return node;
  }

  function setAttributes(node, attributes) {
    Object.keys(attributes || {}).forEach(function (key) {
      if (key === "text") node.textContent = attributes[key];
      else node.setAttribute(key, attributes[key]);
    });
  }

  // "x0,y0 x1,y1 ..." from the stored flat list [x0, y0, x1, y1, ...].
  function pointList(flat) {
    var pairs = [];
    for (var i = 0; i < flat.length; i += 2) pairs.push(flat[i] + "," + flat[i + 1]);
    return pairs.join(" ");
  }

  function nearestIndex(values, target) {
    var best = 0;
    values.forEach(function (value, index) {
      if (Math.abs(Math.log(value / target)) < Math.abs(Math.log(values[best] / target))) {
        best = index;
      }
    });
    return best;
  }

  // Three significant digits; values below 0.001 in exponent notation.
  function formatNumber(value) {
    if (value !== 0 && Math.abs(value) < 1e-3) return value.toExponential(2);
    return Number(value.toPrecision(3)).toString();
  }

  function formatRate(rate) {
    return Number(rate.toPrecision(3)).toString();
  }

  function styleOf(name) {
    return STYLES[name] || ["#000000", "solid"];
  }

  function lineSample(name, parent) {
    var style = styleOf(name);
    var svg = svgElement("svg", {
      class: "ka-lab-sample", viewBox: "0 0 60 16", "aria-hidden": "true"
    }, parent);
    svgElement("line", {
      x1: 2, y1: 8, x2: 58, y2: 8, stroke: style[0],
      "stroke-width": style[1] === "solid" ? 5 : 4,
      "stroke-dasharray": style[1] === "dashed" ? "10 5" : (style[1] === "dotted" ? "1 6" : ""),
      "stroke-linecap": "round"
    }, svg);
  }

  function Lab(root, data) {
    this.root = root;
    this.data = data;
    this.quantum = data.quantum;
    this.state = {
      surface: Math.max(0, data.surfaces.findIndex(function (s) {
        return s.name === DEFAULT.surface;
      })),
      optimizers: {},
      rate: nearestIndex(data.rates, DEFAULT.rate),
      momentum: nearestIndex(data.momenta, DEFAULT.momentum)
    };
    var chosen = data.optimizers.filter(function (o) {
      return DEFAULT.optimizers.indexOf(o.name) >= 0;
    });
    (chosen.length ? chosen : data.optimizers.slice(0, 1)).forEach(function (o) {
      this.state.optimizers[o.name] = true;
    }, this);
    this.build();
    this.draw();
  }

  Lab.prototype.build = function () {
    var root = this.root;
    var data = this.data;
    var self = this;
    root.textContent = "";
    var controls = element("div", { class: "ka-lab-controls" }, root);

    var surfaces = element("fieldset", { class: "ka-lab-surfaces" }, controls);
    element("legend", { text: "Surface" }, surfaces);
    data.surfaces.forEach(function (surface, index) {
      var label = element("label", { class: "ka-lab-choice" }, surfaces);
      var input = element("input", {
        type: "radio", name: "ka-lab-surface", value: surface.name
      }, label);
      input.checked = index === self.state.surface;
      input.addEventListener("change", function () {
        self.state.surface = index;
        self.draw();
      });
      element("span", { text: surface.short }, label);
    });

    var optimizers = element("fieldset", { class: "ka-lab-optimizers" }, controls);
    element("legend", { text: "Optimizers" }, optimizers);
    data.optimizers.forEach(function (optimizer) {
      var label = element("label", { class: "ka-lab-choice" }, optimizers);
      var input = element("input", {
        type: "checkbox", name: "ka-lab-optimizer", value: optimizer.name
      }, label);
      input.checked = !!self.state.optimizers[optimizer.name];
      input.addEventListener("change", function () {
        self.state.optimizers[optimizer.name] = input.checked;
        self.draw();
      });
      lineSample(optimizer.name, label);
      element("span", { text: optimizer.name }, label);
    });

    var sliders = element("div", { class: "ka-lab-sliders" }, controls);
    this.rateInput = this.slider(sliders, "rate", "learning rate η", data.rates.length - 1);
    this.momentumInput = this.slider(
      sliders, "momentum", "momentum μ (Momentum, Nesterov)", data.momenta.length - 1
    );

    var figure = element("div", { class: "ka-lab-figure" }, root);
    this.caption = element("p", { class: "ka-lab-caption", "aria-live": "polite" }, figure);
    this.svg = svgElement("svg", {
      class: "ka-lab-plot", viewBox: "-130 -80 1160 1210", role: "img"
    }, figure);
    this.legend = element("ul", { class: "ka-lab-legend", "aria-live": "polite" }, figure);
  };

  Lab.prototype.slider = function (parent, key, text, maximum) {
    var self = this;
    var row = element("label", { class: "ka-lab-slider" }, parent);
    var name = element("span", { class: "ka-lab-slider-name", text: text }, row);
    var input = element("input", {
      type: "range", min: 0, max: maximum, step: 1, name: "ka-lab-" + key
    }, row);
    input.value = this.state[key];
    var output = element("output", { class: "ka-lab-value" }, row);
    input.addEventListener("input", function () {
      self.state[key] = Number(input.value);
      self.draw();
    });
    input.output = output;
    input.nameElement = name;
    return input;
  };

  Lab.prototype.selected = function () {
    var state = this.state;
    return this.data.optimizers.filter(function (o) {
      return state.optimizers[o.name];
    }).sort(function (a, b) {
      return DRAW_ORDER[styleOf(a.name)[1]] - DRAW_ORDER[styleOf(b.name)[1]];
    });
  };

  // The stored record of `optimizer` at the current setting.
  Lab.prototype.record = function (optimizer) {
    var surface = this.data.surfaces[this.state.surface];
    var rows = this.data.paths[surface.name][optimizer.name];
    var row = optimizer.momentum ? rows[this.state.momentum] : rows[0];
    return row[this.state.rate];
  };

  Lab.prototype.draw = function () {
    var data = this.data;
    var state = this.state;
    var surface = data.surfaces[state.surface];
    var selected = this.selected();
    var usesMomentum = selected.some(function (o) { return o.momentum; });

    this.rateInput.output.textContent = formatRate(data.rates[state.rate]);
    this.momentumInput.output.textContent = String(data.momenta[state.momentum]);
    this.momentumInput.disabled = !usesMomentum;
    this.momentumInput.parentNode.classList.toggle("ka-lab-inactive", !usesMomentum);
    this.caption.textContent = surface.label + ": " + data.steps[surface.name] +
      " steps from the square" + (surface.minimum ? "; the star is the minimum." : ".");

    var svg = this.svg;
    var q = this.quantum;
    svg.textContent = "";
    svg.setAttribute("aria-label", "Paths of " + selected.map(function (o) {
      return o.name;
    }).join(", ") + " on the " + surface.label);
    svg.setAttribute("data-surface", surface.name);
    svg.setAttribute("data-rate-index", state.rate);
    svg.setAttribute("data-momentum-index", state.momentum);
    var defs = svgElement("defs", {}, svg);
    var clip = svgElement("clipPath", { id: "ka-lab-clip" }, defs);
    svgElement("rect", { x: 0, y: 0, width: q, height: q }, clip);
    svgElement("rect", { class: "ka-lab-frame", x: 0, y: 0, width: q, height: q }, svg);
    this.drawTicks(svg, surface);

    // Data coordinates grow upwards; SVG's grow downwards.
    var plot = svgElement("g", {
      transform: "matrix(1 0 0 -1 0 " + q + ")", "clip-path": "url(#ka-lab-clip)"
    }, svg);
    var contours = svgElement("g", { class: "ka-lab-contours" }, plot);
    surface.contours.forEach(function (line) {
      svgElement("polyline", { points: pointList(line) }, contours);
    });
    var paths = svgElement("g", { class: "ka-lab-paths" }, plot);
    var ends = svgElement("g", { class: "ka-lab-ends" }, plot);
    var legend = this.legend;
    legend.textContent = "";
    selected.forEach(function (optimizer) {
      var style = styleOf(optimizer.name);
      var record = this.record(optimizer);
      svgElement("polyline", {
        class: "ka-lab-path",
        points: pointList(record.p),
        stroke: style[0],
        "stroke-width": WIDTHS[style[1]],
        "stroke-dasharray": DASHES[style[1]],
        "data-optimizer": optimizer.name
      }, paths);
      var last = record.p.length - 2;
      if (!record.out) {
        svgElement("circle", {
          cx: record.p[last], cy: record.p[last + 1], r: 14, fill: style[0]
        }, ends);
      }
      this.legendEntry(legend, optimizer, record);
    }, this);
    var start = surface.start;
    svgElement("rect", {
      class: "ka-lab-start", x: start[0] - 16, y: start[1] - 16, width: 32, height: 32
    }, plot);
    if (surface.minimum) {
      svgElement("polygon", {
        class: "ka-lab-minimum", points: starPoints(surface.minimum[0], surface.minimum[1], 30)
      }, plot);
    }
  };

  Lab.prototype.drawTicks = function (svg, surface) {
    var q = this.quantum;
    var ticks = svgElement("g", { class: "ka-lab-ticks" }, svg);
    surface.xticks.forEach(function (tick) {
      svgElement("line", { x1: tick[1], y1: q, x2: tick[1], y2: q + 14 }, ticks);
      svgElement("text", {
        x: tick[1], y: q + 56, "text-anchor": "middle", text: tick[0]
      }, ticks);
    });
    surface.yticks.forEach(function (tick) {
      svgElement("line", { x1: -14, y1: q - tick[1], x2: 0, y2: q - tick[1] }, ticks);
      svgElement("text", {
        x: -22, y: q - tick[1] + 14, "text-anchor": "end", text: tick[0]
      }, ticks);
    });
    svgElement("text", {
      class: "ka-lab-axis", x: q - 4, y: q + 112, "text-anchor": "end", text: "θ₁"
    }, ticks);
    svgElement("text", {
      class: "ka-lab-axis", x: 0, y: -24, "text-anchor": "middle", text: "θ₂"
    }, ticks);
  };

  Lab.prototype.legendEntry = function (legend, optimizer, record) {
    var data = this.data;
    var item = element("li", { "data-optimizer": optimizer.name }, legend);
    lineSample(optimizer.name, item);
    var setting = "η = " + formatRate(data.rates[this.state.rate]);
    if (optimizer.momentum) setting += ", μ = " + data.momenta[this.state.momentum];
    element("strong", { text: optimizer.name }, item);
    var outcome = record.out
      ? "leaves the plot after " + record.k + " steps"
      : "after " + record.k + " steps at (" + formatNumber(record.end[0]) + ", " +
        formatNumber(record.end[1]) + "), value " + formatNumber(record.f);
    element("span", { text: " (" + setting + "): " + outcome }, item);
  };

  function starPoints(cx, cy, radius) {
    var points = [];
    for (var i = 0; i < 10; i++) {
      var r = i % 2 === 0 ? radius : radius * 0.45;
      var angle = Math.PI / 2 + i * Math.PI / 5;
      points.push((cx + r * Math.cos(angle)).toFixed(1) + "," + (cy + r * Math.sin(angle)).toFixed(1));
    }
    return points.join(" ");
  }

  function start() {
    var root = document.getElementById("ka-lab");
    if (!root) return;
    var data = window.KERAS_ADAPTIVE_LAB;
    if (!data) {
      root.textContent = "The lab's data (lab_data.js) did not load.";
      return;
    }
    root.lab = new Lab(root, data);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
}());
