import Foundation
import SculptIO

/// `curve.svg`: training loss (top) and validation accuracy (bottom) by step.
public enum TrainingCurve {
    public static func svg(metrics: [MetricsRecord]) -> String {
        let loss = metrics.compactMap { r in r.loss.map { (x: Double(r.step), y: $0) } }
        let acc = metrics.compactMap { r in r.valAccuracy.map { (x: Double(r.step), y: $0 * 100) } }
        // Both panels share the step axis so they line up.
        let r = SVGLinePlot.niceRange([0] + metrics.map { Double($0.step) })
        let steps = r.0...r.1
        var plots = [SVGLinePlot(title: "Training loss", xLabel: "step", yLabel: "loss",
                                 series: [.init(name: "train loss", points: loss, color: SVGLinePlot.palette[0])], xRange: steps)]
        if !acc.isEmpty {
            plots.append(SVGLinePlot(title: "Validation accuracy", xLabel: "step", yLabel: "accuracy (%)",
                                     series: [.init(name: "val accuracy", points: acc, color: SVGLinePlot.palette[1], markers: true)], xRange: steps))
        }
        return SVGLinePlot.document(plots)
    }

    public static func write(metrics: [MetricsRecord], to url: URL) throws {
        try AtomicFile.write(Data(svg(metrics: metrics).utf8), to: url)
    }
}
