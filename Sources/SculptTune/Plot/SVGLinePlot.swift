import Foundation

/// A small SVG line/scatter plot: axes with "nice" ticks, axis labels, a title and a legend.
/// Self-contained text output (no fonts or scripts), reusable for training curves and
/// Pareto fronts (`markers` draws points, `lines` joins them).
public struct SVGLinePlot: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var color: String
        public var lines: Bool
        public var markers: Bool
        public init(name: String, points: [(x: Double, y: Double)], color: String, lines: Bool = true, markers: Bool = false) {
            self.name = name
            self.points = points
            self.color = color
            self.lines = lines
            self.markers = markers
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var series: [Series]
    /// Fixed y range (e.g. 0…1 for accuracy); nil fits the data.
    public var yRange: ClosedRange<Double>?
    /// Fixed x range (e.g. shared by stacked panels); nil fits the data.
    public var xRange: ClosedRange<Double>?

    public init(title: String, xLabel: String, yLabel: String, series: [Series], yRange: ClosedRange<Double>? = nil, xRange: ClosedRange<Double>? = nil) {
        self.xRange = xRange
        self.title = title
        self.xLabel = xLabel
        self.yLabel = yLabel
        self.series = series
        self.yRange = yRange
    }

    public static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    /// The plot as an SVG `<g>` group at (x, y) of the given size.
    public func group(x ox: Double, y oy: Double, width: Double, height: Double) -> String {
        let left = 64.0, right = 16.0, top = 28.0, bottom = 44.0
        let pw = width - left - right, ph = height - top - bottom
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        let xr = xRange.map { ($0.lowerBound, $0.upperBound) } ?? Self.niceRange(all.map(\.x))
        let yr = yRange.map { ($0.lowerBound, $0.upperBound) } ?? Self.niceRange(all.map(\.y))
        func px(_ x: Double) -> Double { left + (x - xr.0) / max(xr.1 - xr.0, 1e-12) * pw }
        func py(_ y: Double) -> Double { top + ph - (y - yr.0) / max(yr.1 - yr.0, 1e-12) * ph }
        var s = "<g transform=\"translate(\(f(ox)),\(f(oy)))\" font-family=\"sans-serif\" font-size=\"11\">\n"
        s += "<text x=\"\(f(left + pw / 2))\" y=\"16\" text-anchor=\"middle\" font-size=\"13\">\(escape(title))</text>\n"
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#444\"/>\n"
        for t in Self.ticks(xr.0, xr.1) {
            s += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top + ph))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + ph + 4))\" stroke=\"#444\"/>"
            s += "<text x=\"\(f(px(t)))\" y=\"\(f(top + ph + 16))\" text-anchor=\"middle\">\(Self.label(t))</text>\n"
        }
        for t in Self.ticks(yr.0, yr.1) {
            s += "<line x1=\"\(f(left - 4))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + pw))\" y2=\"\(f(py(t)))\" stroke=\"#ddd\"/>"
            s += "<text x=\"\(f(left - 7))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(Self.label(t))</text>\n"
        }
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 8))\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        s += "<text transform=\"translate(14,\(f(top + ph / 2))) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        for (i, sr) in series.enumerated() {
            let pts = sr.points.filter { $0.x.isFinite && $0.y.isFinite }
            if sr.lines && pts.count > 1 {
                s += "<polyline fill=\"none\" stroke=\"\(sr.color)\" stroke-width=\"1.5\" points=\"\(pts.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " "))\"/>\n"
            }
            if sr.markers || pts.count == 1 {
                for p in pts { s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\" fill=\"\(sr.color)\"/>" }
                s += "\n"
            }
            // Legend, top right inside the frame.
            let ly = top + 14 + Double(i) * 15
            s += "<line x1=\"\(f(left + pw - 120))\" y1=\"\(f(ly - 4))\" x2=\"\(f(left + pw - 104))\" y2=\"\(f(ly - 4))\" stroke=\"\(sr.color)\" stroke-width=\"2\"/>"
            s += "<text x=\"\(f(left + pw - 100))\" y=\"\(f(ly))\">\(escape(sr.name))</text>\n"
        }
        return s + "</g>\n"
    }

    /// A complete SVG document.
    public func svg(width: Double = 640, height: Double = 360) -> String {
        SVGLinePlot.document([self], width: width, panelHeight: height)
    }

    /// Panels stacked vertically in one document.
    public static func document(_ plots: [SVGLinePlot], width: Double = 640, panelHeight: Double = 320) -> String {
        let h = panelHeight * Double(plots.count)
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(f(width))\" height=\"\(f(h))\" viewBox=\"0 0 \(f(width)) \(f(h))\">\n"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        for (i, p) in plots.enumerated() { s += p.group(x: 0, y: Double(i) * panelHeight, width: width, height: panelHeight) }
        return s + "</svg>\n"
    }

    /// A range covering the values, widened to tick boundaries.
    static func niceRange(_ values: [Double]) -> (Double, Double) {
        guard var lo = values.min(), var hi = values.max() else { return (0, 1) }
        if lo == hi { lo -= 0.5; hi += 0.5 }
        let step = niceStep((hi - lo) / 5)
        return ((lo / step).rounded(.down) * step, (hi / step - 1e-9).rounded(.up) * step)
    }

    /// 1, 2 or 5 times a power of ten.
    static func niceStep(_ raw: Double) -> Double {
        let p = Foundation.pow(10, (Foundation.log10(max(raw, 1e-12))).rounded(.down))
        let m = raw / p
        return (m <= 1 ? 1 : m <= 2.5 ? 2 : m <= 5 ? 5 : 10) * p
    }

    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let step = niceStep((hi - lo) / 5)
        var out: [Double] = []
        var t = (lo / step).rounded(.up) * step
        while t <= hi + step * 1e-9 && out.count < 20 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e7 { return String(Int(v)) }
        return String(format: "%g", (v * 1e6).rounded() / 1e6)
    }
}

private func f(_ v: Double) -> String { String(format: "%.1f", v) }
private func escape(_ s: String) -> String {
    s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
}
