import XCTest
import SculptCore
import SculptIO
import SculptTestSupport
@testable import SculptNN

/// End-to-end check of the engine: an MLP trained for one epoch on Fashion-MNIST.
final class FashionMNISTMLPTests: XCTestCase {
    func load(_ images: URL, _ labels: URL) throws -> (Tensor, [Int32]) {
        let img = try IDX.readImages(images), lab = try IDX.readLabels(labels)
        let pixels = img.pixels.map { (Float($0) / 255 - 0.2860) / 0.3530 }
        return (Tensor(shape: [img.count, img.rows * img.columns], data: pixels), lab.labels)
    }

    func testMLPReaches85PercentInOneEpoch() throws {
        let dir = try SharedData.require("datasets/fashion-mnist")
        let (trainX, trainY) = try load(dir.appendingPathComponent("train-images-idx3-ubyte.gz"), dir.appendingPathComponent("train-labels-idx1-ubyte.gz"))
        let (testX, testY) = try load(dir.appendingPathComponent("t10k-images-idx3-ubyte.gz"), dir.appendingPathComponent("t10k-labels-idx1-ubyte.gz"))
        var rng = SeededRNG(seed: 1)
        let model = Sequential([Linear(784, 256, using: &rng), Activation(.relu), Linear(256, 128, using: &rng), Activation(.relu), Linear(128, 10, using: &rng)])
        let optimizer = AdamW(learningRate: 1e-3, weightDecay: 0)
        let params = model.namedParameters()
        let batch = 32
        var order = Array(0..<trainY.count)
        order.shuffle(using: &rng)
        for start in stride(from: 0, to: order.count, by: batch) {
            let idx = order[start..<min(order.count, start + batch)].map { Int32($0) }
            let x = Variable(trainX.indexSelect(axis: 0, idx))
            let loss = crossEntropy(model(x), labels: idx.map { trainY[Int($0)] })
            loss.backward()
            optimizer.step(params)
            model.zeroGrad()
        }
        model.eval()
        let logits = withoutGradients { model(Variable(testX)) }.value
        var correct = 0
        for r in 0..<testY.count {
            var best = 0
            for c in 1..<10 where logits[flat: r * 10 + c] > logits[flat: r * 10 + best] { best = c }
            if Int32(best) == testY[r] { correct += 1 }
        }
        let accuracy = Double(correct) / Double(testY.count)
        print("Fashion-MNIST MLP, one epoch: test accuracy \(String(format: "%.2f", accuracy * 100)) %")
        XCTAssertGreaterThanOrEqual(accuracy, 0.85)
    }
}
