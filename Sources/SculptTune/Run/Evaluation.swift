import Foundation
import SculptCore
import SculptIO

/// `sculpt eval` and `sculpt predict`: a saved classifier on a file.
public enum Evaluation {
    /// Accuracy and loss of a run's (or saved classifier's) final model on a labelled file;
    /// for a merged model, with the head of task `task` (see `ClassifierStore.load`).
    public static func evaluate(modelOrRun: URL, data: URL, batchSize: Int = 64, threads: Int = 0, task: Int? = nil) throws -> EvalResult {
        let (model, labels, tokenizer, _) = try ClassifierStore.load(modelOrRun, task: task)
        return try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            let set: ClassificationData
            if let tokenizer {
                set = try DataPreparation.loadText(data, labels: labels, textField: model.spec.textField, labelField: model.spec.labelField,
                                                   tokenizer: tokenizer, maxLength: model.spec.maxLength, cacheFile: nil)
            } else {
                set = try DataPreparation.loadImages(data, labels: labels)
            }
            return Evaluator.evaluate(model, on: set, batchSize: batchSize, padId: tokenizer?.padId ?? 0)
        }
    }

    /// One predicted label per input text (a JSONL file with the text field, or plain lines).
    public static func predict(modelOrRun: URL, textsFile: URL, batchSize: Int = 64, threads: Int = 0, task: Int? = nil) throws -> [String] {
        let (model, labels, tokenizer, _) = try ClassifierStore.load(modelOrRun, task: task)
        guard let tokenizer else { throw TuneError("\(modelOrRun.path): predict works on text classifiers; this one classifies images") }
        let texts = try TextLines.read(textsFile, field: model.spec.textField)
        guard !texts.isEmpty else { throw TuneError("\(textsFile.path): no texts") }
        return withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            let rows = texts.map { tokenizer.encode($0, maxLength: model.spec.maxLength) }
            let set = ClassificationData(inputs: .tokens(rows), labels: [Int32](repeating: 0, count: rows.count))
            return Evaluator.predict(model, on: set, batchSize: batchSize, padId: tokenizer.padId).map { labels.names[Int($0)] }
        }
    }
}
