import XCTest
@testable import SculptIO

final class SVGPlotTests: XCTestCase {
    func testPlotHasAxesSeriesLegendAndEscapedText() {
        let p = SVGPlot(title: "T", xLabel: "step", yLabel: "loss",
                        series: [.init(name: "train <loss>", points: [(0, 2.5), (10, 1.0), (20, 0.4)], style: .line, color: "#123456")])
        let svg = p.render()
        XCTAssertTrue(svg.hasPrefix("<svg") && svg.hasSuffix("</svg>\n"))
        XCTAssertTrue(svg.contains("<polyline"))
        XCTAssertFalse(svg.contains("<circle cx"), "a line series draws no markers")
        XCTAssertTrue(svg.contains("train &lt;loss&gt;"))
        XCTAssertTrue(svg.contains(">step<"))
    }

    func testNiceTicksAreRoundAndSpanTheRange() {
        XCTAssertEqual(SVGPlot.niceTicks(0, 1), [0, 0.2, 0.4, 0.6000000000000001, 0.8, 1].map { $0 }, accuracy: 1e-9)
        XCTAssertEqual(SVGPlot.niceTicks(3, 97), [20, 40, 60, 80], accuracy: 1e-9)
    }

    func testDocumentStacksPanelsVertically() {
        var a = SVGPlot(title: "A", xLabel: "x", yLabel: "y", series: [.init(name: "a", points: [(0, 0), (1, 1)], color: "#000")])
        a.height = 300
        let b = SVGPlot(title: "B", xLabel: "x", yLabel: "y")
        let svg = SVGPlot.document([a, b])
        XCTAssertTrue(svg.contains("<g transform=\"translate(0,0.00)\">"))
        XCTAssertTrue(svg.contains("<g transform=\"translate(0,300.00)\">"))
        XCTAssertTrue(svg.contains("height=\"\(String(format: "%.2f", 300 + b.height))\""))
    }
}

private func XCTAssertEqual(_ a: [Double], _ b: [Double], accuracy: Double, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(a) vs \(b)", file: file, line: line)
    for (x, y) in zip(a, b) { XCTAssertEqual(x, y, accuracy: accuracy, "\(a) vs \(b)", file: file, line: line) }
}
