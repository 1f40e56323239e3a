// uPlot is loaded as a classic script (assets/uPlot.min.js, the package's minified IIFE build) and
// used through its global; these are the package's own types for it.
/// <reference path="../../node_modules/uplot/dist/uPlot.d.ts" />
