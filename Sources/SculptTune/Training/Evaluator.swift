import Foundation
import SculptCore
import SculptNN

/// Accuracy, mean loss and per-class counts on a labelled set.
public struct EvalResult: Codable, Sendable, Equatable {
    public var accuracy: Double
    public var loss: Double
    public var examples: Int
    public var correctPerClass: [Int]
    public var countPerClass: [Int]

    /// The three numbers `sculpt eval --json` prints.
    public struct Summary: Codable, Sendable { public var accuracy: Double; public var loss: Double; public var examples: Int }
    public var summary: Summary { Summary(accuracy: accuracy, loss: loss, examples: examples) }
}

public enum Evaluator {
    /// Runs the model in evaluation mode without recording gradients; restores the mode after.
    public static func evaluate(_ model: any Classifier, on data: ClassificationData, batchSize: Int, padId: Int32 = 0) -> EvalResult {
        let classes = model.spec.classes
        var correct = [Int](repeating: 0, count: classes), counts = [Int](repeating: 0, count: classes)
        var lossSum = 0.0
        let wasTraining = model.training
        model.eval()
        defer { model.setTraining(wasTraining) }
        withoutGradients {
            for start in stride(from: 0, to: data.count, by: batchSize) {
                let idx = Array(start..<min(data.count, start + batchSize))
                let batch = data.batch(idx, padId: padId)
                let logits = model.logits(batch.input)
                lossSum += Double(crossEntropy(logits, labels: batch.labels).value.scalar) * Double(idx.count)
                let predicted = argmaxRows(logits.value)
                for (p, y) in zip(predicted, batch.labels) {
                    counts[Int(y)] += 1
                    if p == y { correct[Int(y)] += 1 }
                }
            }
        }
        let n = max(1, data.count)
        return EvalResult(accuracy: Double(correct.reduce(0, +)) / Double(n), loss: lossSum / Double(n), examples: data.count,
                          correctPerClass: correct, countPerClass: counts)
    }

    /// Predicted class ids.
    public static func predict(_ model: any Classifier, on data: ClassificationData, batchSize: Int, padId: Int32 = 0) -> [Int32] {
        model.eval()
        return withoutGradients {
            stride(from: 0, to: data.count, by: batchSize).flatMap { start in
                argmaxRows(model.logits(data.batch(Array(start..<min(data.count, start + batchSize)), padId: padId).input).value)
            }
        }
    }

    static func argmaxRows(_ t: Tensor) -> [Int32] {
        let c = t.shape.last ?? 1, rows = t.count / max(c, 1)
        return t.withUnsafePointer { p in
            (0..<rows).map { r in
                var best = 0
                for j in 1..<c where p[r * c + j] > p[r * c + best] { best = j }
                return Int32(best)
            }
        }
    }
}
