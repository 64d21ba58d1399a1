import Foundation
import SculptIO

/// `curve.svg`: training loss (top) and validation accuracy (bottom) by step.
public enum TrainingCurve {
    public static func svg(metrics: [MetricsRecord]) -> String {
        let loss = metrics.compactMap { r in r.loss.map { (x: Double(r.step), y: $0) } }
        let acc = metrics.compactMap { r in r.valAccuracy.map { (x: Double(r.step), y: $0 * 100) } }
        // Both panels share the step axis so they line up.
        let steps = 0...Double(max(1, metrics.map(\.step).max() ?? 1))
        func panel(_ title: String, _ yLabel: String, _ series: SVGPlot.Series) -> SVGPlot {
            var p = SVGPlot(title: title, xLabel: "step", yLabel: yLabel, series: [series])
            p.xRange = steps
            p.height = 340
            return p
        }
        var plots = [panel("Training loss", "loss",
                           .init(name: "train loss", points: loss, style: .line, color: SVGPlot.palette[0]))]
        if !acc.isEmpty {
            plots.append(panel("Validation accuracy", "accuracy (%)",
                               .init(name: "val accuracy", points: acc, style: .lineAndMarkers, color: SVGPlot.palette[1])))
        }
        return SVGPlot.document(plots)
    }

    public static func write(metrics: [MetricsRecord], to url: URL) throws {
        try AtomicFile.write(Data(svg(metrics: metrics).utf8), to: url)
    }
}
