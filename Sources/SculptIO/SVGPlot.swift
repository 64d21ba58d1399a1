import Foundation

/// A small dependency-free SVG plot: axes with "nice" ticks, axis labels, a title, any number
/// of series drawn as markers, lines or both, and a legend. Meant for search fronts (scatter
/// plus a connected front) and training curves (lines), so one helper serves both.
public struct SVGPlot: Sendable {
    public enum Style: String, Sendable { case markers, line, lineAndMarkers }

    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var style: Style
        public var color: String
        public var markerRadius: Double
        public var opacity: Double
        public init(name: String, points: [(x: Double, y: Double)], style: Style = .markers, color: String,
                    markerRadius: Double = 3, opacity: Double = 1) {
            self.name = name; self.points = points; self.style = style; self.color = color
            self.markerRadius = markerRadius; self.opacity = opacity
        }
    }

    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var width: Double = 760
    public var height: Double = 500
    public var series: [Series] = []
    /// Fixed axis ranges; nil: the data's range widened to nice tick values.
    public var xRange: ClosedRange<Double>?
    public var yRange: ClosedRange<Double>?

    /// A colour cycle that stays legible in print and for common colour blindness.
    public static let palette = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000"]

    public init(title: String, xLabel: String, yLabel: String, series: [Series] = []) {
        self.title = title; self.xLabel = xLabel; self.yLabel = yLabel; self.series = series
    }

    /// About `count` ticks at 1, 2 or 5 × 10^k spanning `lo...hi`.
    public static func niceTicks(_ lo: Double, _ hi: Double, count: Int = 6) -> [Double] {
        guard lo.isFinite, hi.isFinite else { return [] }
        if hi <= lo { return [lo] }
        let raw = (hi - lo) / Double(max(count - 1, 1))
        let mag = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 5, 10].map { $0 * mag }.first { $0 >= raw } ?? 10 * mag
        var t = ceil(lo / step - 1e-9) * step
        var out: [Double] = []
        while t <= hi + step * 1e-9 { out.append(abs(t) < step * 1e-9 ? 0 : t); t += step }
        return out
    }

    static func label(_ v: Double) -> String {
        if v == 0 { return "0" }
        let a = abs(v)
        if a >= 1e5 || a < 1e-3 { return String(format: "%.2g", v) }
        var s = String(format: "%.4f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    static func range(_ values: [Double]) -> ClosedRange<Double> {
        let finite = values.filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max() else { return 0...1 }
        // A little air so extreme points do not sit on the frame.
        if hi > lo { return (lo - 0.03 * (hi - lo))...(hi + 0.03 * (hi - lo)) }
        let pad = abs(lo) > 0 ? abs(lo) * 0.05 : 1
        return (lo - pad)...(hi + pad)
    }

    /// A complete SVG document holding this plot.
    public func render() -> String { SVGPlot.document([self]) }

    /// Plots stacked vertically in one document, each at its own `width` × `height`
    /// (training curves: loss above accuracy on a shared step axis).
    public static func document(_ plots: [SVGPlot]) -> String {
        let w = plots.map(\.width).max() ?? 0, h = plots.reduce(0) { $0 + $1.height }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }
        var s = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(f(w))" height="\(f(h))" viewBox="0 0 \(f(w)) \(f(h))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>

        """
        var y = 0.0
        for p in plots {
            s += p.group(y: y)
            y += p.height
        }
        return s + "</svg>\n"
    }

    /// The plot as an SVG group whose top edge is at `y`.
    func group(y originY: Double) -> String {
        let left = 78.0, right = 24.0, top = 44.0, bottom = 58.0
        let pw = width - left - right, ph = height - top - bottom
        let all = series.flatMap(\.points)
        let xr = xRange ?? SVGPlot.range(all.map(\.x)), yr = yRange ?? SVGPlot.range(all.map(\.y))
        let xt = SVGPlot.niceTicks(xr.lowerBound, xr.upperBound), yt = SVGPlot.niceTicks(yr.lowerBound, yr.upperBound)
        // Widen the data range to include the outer ticks so marks never sit on the frame.
        let x0 = min(xr.lowerBound, xt.first ?? xr.lowerBound), x1 = max(xr.upperBound, xt.last ?? xr.upperBound)
        let y0 = min(yr.lowerBound, yt.first ?? yr.lowerBound), y1 = max(yr.upperBound, yt.last ?? yr.upperBound)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * pw }
        func py(_ y: Double) -> Double { top + ph - (y - y0) / (y1 - y0) * ph }
        func f(_ v: Double) -> String { String(format: "%.2f", v) }

        var s = """
        <g transform="translate(0,\(f(originY)))">
        <text x="\(f(width / 2))" y="24" text-anchor="middle" font-size="15">\(SVGPlot.escape(title))</text>

        """
        for t in xt {
            s += "<line x1=\"\(f(px(t)))\" y1=\"\(f(top))\" x2=\"\(f(px(t)))\" y2=\"\(f(top + ph))\" stroke=\"#e5e5e5\"/>\n"
            s += "<text x=\"\(f(px(t)))\" y=\"\(f(top + ph + 18))\" text-anchor=\"middle\">\(SVGPlot.label(t))</text>\n"
        }
        for t in yt {
            s += "<line x1=\"\(f(left))\" y1=\"\(f(py(t)))\" x2=\"\(f(left + pw))\" y2=\"\(f(py(t)))\" stroke=\"#e5e5e5\"/>\n"
            s += "<text x=\"\(f(left - 8))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\">\(SVGPlot.label(t))</text>\n"
        }
        s += "<rect x=\"\(f(left))\" y=\"\(f(top))\" width=\"\(f(pw))\" height=\"\(f(ph))\" fill=\"none\" stroke=\"#333\"/>\n"
        s += "<text x=\"\(f(left + pw / 2))\" y=\"\(f(height - 14))\" text-anchor=\"middle\">\(SVGPlot.escape(xLabel))</text>\n"
        s += "<text x=\"18\" y=\"\(f(top + ph / 2))\" text-anchor=\"middle\" transform=\"rotate(-90 18 \(f(top + ph / 2)))\">\(SVGPlot.escape(yLabel))</text>\n"

        for se in series {
            let pts = se.points.filter { $0.x.isFinite && $0.y.isFinite }
            if se.style != .markers, pts.count > 1 {
                let d = pts.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                s += "<polyline points=\"\(d)\" fill=\"none\" stroke=\"\(se.color)\" stroke-width=\"1.8\" opacity=\"\(se.opacity)\"/>\n"
            }
            if se.style != .line {
                for p in pts {
                    s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"\(f(se.markerRadius))\" fill=\"\(se.color)\" opacity=\"\(se.opacity)\"/>\n"
                }
            }
        }
        // Legend, top right inside the frame.
        let lw = 14 + 7 * Double(series.map(\.name.count).max() ?? 0) + 24
        var ly = top + 10
        if !series.isEmpty {
            s += "<rect x=\"\(f(left + pw - lw - 8))\" y=\"\(f(top + 4))\" width=\"\(f(lw))\" height=\"\(f(Double(series.count) * 18 + 8))\" fill=\"white\" stroke=\"#ccc\" opacity=\"0.9\"/>\n"
        }
        for se in series {
            let lx = left + pw - lw
            if se.style == .line {
                s += "<line x1=\"\(f(lx))\" y1=\"\(f(ly + 7))\" x2=\"\(f(lx + 14))\" y2=\"\(f(ly + 7))\" stroke=\"\(se.color)\" stroke-width=\"2\"/>\n"
            } else {
                s += "<circle cx=\"\(f(lx + 7))\" cy=\"\(f(ly + 7))\" r=\"4\" fill=\"\(se.color)\" opacity=\"\(se.opacity)\"/>\n"
            }
            s += "<text x=\"\(f(lx + 20))\" y=\"\(f(ly + 11))\">\(SVGPlot.escape(se.name))</text>\n"
            ly += 18
        }
        return s + "</g>\n"
    }

    /// Writes the SVG atomically.
    public func write(to url: URL) throws {
        try AtomicFile.write(Data(render().utf8), to: url)
    }
}
