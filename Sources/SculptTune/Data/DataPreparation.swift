import Foundation
import SculptCore
import SculptIO

/// Training and validation data of a run, with the label vocabulary.
public struct PreparedData: Sendable {
    public var train: ClassificationData
    public var validation: ClassificationData?
    public var labels: LabelVocabulary
}

/// Turns `--data` / `--eval-data` into in-memory datasets.
public enum DataPreparation {
    /// Image data: an IDX images file (labels beside it), or an MNIST-layout directory whose
    /// train split trains and whose t10k split validates. Text data: JSONL or CSV, tokenised
    /// with `tokenizer` (cached under `cacheDirectory`).
    public static func prepare(_ c: TrainConfig, tokenizer: WordPieceTokenizer?, cacheDirectory: URL?) throws -> PreparedData {
        let dataURL = URL(fileURLWithPath: c.data)
        if let tokenizer {
            let examples = try TextExamples.read(dataURL, textField: c.textField, labelField: c.labelField)
            let labels = LabelVocabulary(collecting: examples.map(\.label))
            let ids = try labels.ids(of: examples, file: dataURL.path)
            let tokens = try TokenCache.tokens(examples.map(\.text), tokenizer: tokenizer, maxLength: c.maxLength,
                                               cacheFile: cacheDirectory?.appendingPathComponent("tokens-train.safetensors"))
            let all = ClassificationData(inputs: .tokens(tokens), labels: ids)
            if let eval = c.evalData {
                let v = try loadText(URL(fileURLWithPath: eval), labels: labels, textField: c.textField, labelField: c.labelField,
                                     tokenizer: tokenizer, maxLength: c.maxLength, cacheFile: cacheDirectory?.appendingPathComponent("tokens-eval.safetensors"))
                return PreparedData(train: all, validation: v, labels: labels)
            }
            return split(all, labels: labels, fraction: c.valFraction, seed: c.seed)
        }
        // Images.
        if ["jsonl", "json", "csv"].contains(dataURL.pathExtension.lowercased()) {
            throw TuneError("--data \(c.data) is text; --model \(c.model) trains on images (IDX); text needs --model <BERT model directory>")
        }
        var trainImages = dataURL, trainLabels: URL? = nil
        var defaultEval: (URL, URL)? = nil
        if isDirectory(dataURL) {
            let s = try IDX.splitURLs(inDirectory: dataURL)
            (trainImages, trainLabels) = (s.trainImages, s.trainLabels)
            defaultEval = (s.testImages, s.testLabels)
        }
        let raw = try readImages(trainImages, labels: trainLabels)
        let labels = LabelVocabulary(collecting: raw.labels.map { String($0) })
        let all = try mapImageLabels(raw, labels: labels, file: trainImages.path)
        if let eval = c.evalData {
            return PreparedData(train: all, validation: try loadImages(URL(fileURLWithPath: eval), labels: labels), labels: labels)
        }
        if let (images, labelsURL) = defaultEval {
            let v = try mapImageLabels(try readImages(images, labels: labelsURL), labels: labels, file: images.path)
            return PreparedData(train: all, validation: v, labels: labels)
        }
        return split(all, labels: labels, fraction: c.valFraction, seed: c.seed)
    }

    static func split(_ all: ClassificationData, labels: LabelVocabulary, fraction: Double, seed: UInt64) -> PreparedData {
        guard fraction > 0, all.count > 1 else { return PreparedData(train: all, validation: nil, labels: labels) }
        let (t, v) = validationSplit(count: all.count, fraction: fraction, seed: seed)
        return PreparedData(train: all.subset(t), validation: all.subset(v), labels: labels)
    }

    /// Labelled text for evaluation; every label must be in the training vocabulary.
    public static func loadText(_ url: URL, labels: LabelVocabulary, textField: String, labelField: String,
                                tokenizer: WordPieceTokenizer, maxLength: Int, cacheFile: URL?) throws -> ClassificationData {
        let examples = try TextExamples.read(url, textField: textField, labelField: labelField)
        let ids = try labels.ids(of: examples, file: url.path)
        let tokens = try TokenCache.tokens(examples.map(\.text), tokenizer: tokenizer, maxLength: maxLength, cacheFile: cacheFile)
        return ClassificationData(inputs: .tokens(tokens), labels: ids)
    }

    /// Labelled images for evaluation: an images file, or an MNIST directory (its t10k split).
    public static func loadImages(_ url: URL, labels: LabelVocabulary) throws -> ClassificationData {
        if isDirectory(url) {
            let s = try IDX.splitURLs(inDirectory: url)
            return try mapImageLabels(try readImages(s.testImages, labels: s.testLabels), labels: labels, file: s.testImages.path)
        }
        return try mapImageLabels(try readImages(url, labels: nil), labels: labels, file: url.path)
    }

    struct RawImages { var images: IDXImages; var labels: [Int32] }

    static func readImages(_ url: URL, labels: URL?) throws -> RawImages {
        guard FileManager.default.fileExists(atPath: url.path) else { throw TuneError("\(url.path): no such file or directory") }
        let (images, l) = try IDX.readDataset(images: url, labels: labels)
        guard images.count > 0 else { throw TuneError("\(url.path): the dataset is empty (0 images)") }
        return RawImages(images: images, labels: l.labels)
    }

    static func mapImageLabels(_ raw: RawImages, labels: LabelVocabulary, file: String) throws -> ClassificationData {
        var map: [Int32: Int32] = [:]
        for v in Set(raw.labels) { if let id = labels.id(of: String(v)) { map[v] = id } }
        var ids: [Int32] = []
        ids.reserveCapacity(raw.labels.count)
        for (i, l) in raw.labels.enumerated() {
            guard let id = map[l] else {
                throw TuneError("\(file): item \(i) has label \(l), which the training data does not have (labels: \(labels.names.joined(separator: ", ")))")
            }
            ids.append(id)
        }
        return ClassificationData(inputs: .images(pixels: raw.images.pixels, height: raw.images.rows, width: raw.images.columns), labels: ids)
    }

    static func isDirectory(_ url: URL) -> Bool {
        var d: ObjCBool = false
        return FileManager.default.fileExists(atPath: url.path, isDirectory: &d) && d.boolValue
    }
}
