import Foundation
import SculptIO

/// One-line errors of merging and diffing; each names the file, model or key at fault.
public struct MergeError: Error, CustomStringConvertible, Equatable, Sendable {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// The merge methods Sculpt knows (mergekit's names where mergekit has the method).
public enum MergeMethodName: String, CaseIterable, Sendable, Codable {
    case linear
    case taskArithmetic = "task_arithmetic"
    case ties
    case dareLinear = "dare_linear"
    case dareTies = "dare_ties"
    case magnitudePrune = "magnitude_prune"
    case lines
    case transfer
    case sparseDiff = "sparse_diff"
    case loraConcat = "lora_concat"
    case loraSVD = "lora_svd"

    public static var known: String { allCases.map(\.rawValue).joined(separator: ", ") }

    /// Methods that sparsify each task vector by magnitude (top-`density` |τ|).
    var trimsByMagnitude: Bool { self == .ties || self == .magnitudePrune }
    /// Methods that drop entries at random (DARE).
    var dropsAtRandom: Bool { self == .dareLinear || self == .dareTies }
    /// Methods that elect a sign per entry and average only the agreeing task vectors.
    var usesSignConsensus: Bool { self == .ties || self == .dareTies }
    /// mergekit's per-method default of `normalize`.
    var defaultNormalize: Bool { self == .linear || self == .ties }
}

/// How the elected sign of an entry is computed (TIES step 2).
public enum SignConsensus: String, Sendable, Codable, CaseIterable {
    /// sgn(Σ wᵢ τ̂ᵢ): total mass of the weighted, trimmed task vectors (mergekit's `sum`).
    case sum
    /// sgn(Σ τ̂ᵢ): total mass before weighting (the TIES paper; PEFT's `total`).
    case sumUnweighted = "sum_unweighted"
    /// sgn(Σ sgn τ̂ᵢ): a vote (mergekit's `count`, PEFT's `frequency`).
    case count
}

/// What the agreeing entries are divided by when `normalize` is on (TIES step 3).
public enum DisjointMean: String, Sendable, Codable, CaseIterable {
    /// Σ wᵢ over the agreeing models (mergekit).
    case weightSum = "weight_sum"
    /// The number of agreeing models (the TIES paper, PEFT).
    case count
}

/// How DARE compensates for dropped entries.
public enum DropRescale: String, Sendable, Codable, CaseIterable {
    /// Multiply kept entries by 1/(1−p) = 1/density (the DARE paper, PEFT, mergekit `rescale: true`).
    case inverse
    /// Scale so the L1 norm of the task vector is preserved (mergekit `rescale_norm: l1`).
    case l1
    /// No rescaling.
    case none
}

/// Where the top-`density` magnitude threshold is computed.
public enum DensityScope: String, Sendable, Codable, CaseIterable {
    /// Per tensor (mergekit, PEFT).
    case perTensor = "per_tensor"
    /// Over the whole task vector of each model (the TIES paper's "top-k% of the task vector").
    case global
}

public enum OutputDType: String, Sendable, Codable, CaseIterable {
    case float32, float16, bfloat16
    var safetensors: SafeTensorsDType {
        switch self { case .float32: return .f32; case .float16: return .f16; case .bfloat16: return .bf16 }
    }
}

/// One input model of a merge and its per-model parameters.
public struct MergeInput: Sendable, Equatable {
    /// As written in the config.
    public var model: String
    public var weight: Double
    public var density: Double
    public init(model: String, weight: Double = 1, density: Double = 1) {
        self.model = model
        self.weight = weight
        self.density = density
    }
}

/// A merge configuration in mergekit's vocabulary (see `MergeConfig.parse`).
public struct MergeConfig: Sendable, Equatable {
    public var method: MergeMethodName
    public var baseModel: String?
    /// `transfer` only: the base the fine-tunes were trained from.
    public var oldBaseModel: String?
    public var models: [MergeInput]
    public var lambda: Double = 1
    public var normalize: Bool
    public var consensus: SignConsensus = .sum
    public var disjointMean: DisjointMean = .weightSum
    public var rescale: DropRescale = .inverse
    public var densityScope: DensityScope = .perTensor
    public var seed: UInt64 = 0
    /// LiNeS: the scale of the first layer and of tensors outside the layers.
    public var alpha: Double?
    /// LiNeS: the scale added across the depth (the last layer gets α + β).
    public var beta: Double?
    /// `lora_svd`: the rank of the combined adapter.
    public var rank: Int?
    public var dtype: OutputDType = .float32
    /// The config file (names it in errors); "" when built in code.
    public var file: String = ""

    public init(method: MergeMethodName, baseModel: String? = nil, oldBaseModel: String? = nil, models: [MergeInput]) {
        self.method = method
        self.baseModel = baseModel
        self.oldBaseModel = oldBaseModel
        self.models = models
        normalize = method.defaultNormalize
    }

    static let topLevelKeys = ["merge_method", "base_model", "old_base_model", "models", "parameters", "dtype", "out_dtype"]
    static let globalKeys = ["lambda", "normalize", "consensus", "consensus_method", "disjoint_mean", "rescale", "rescale_norm",
                             "density_scope", "seed", "alpha", "beta", "rank", "weight", "density"]
    static let modelKeys = ["weight", "density"]

    public static func load(_ url: URL) throws -> MergeConfig {
        let text: String
        do { text = try String(contentsOf: url, encoding: .utf8) } catch {
            throw MergeError("\(url.path): cannot read merge config: \(error.localizedDescription)")
        }
        return try parse(text, file: url.path)
    }

    /// Parses the YAML text. Top-level keys: `merge_method`, `base_model`, `old_base_model`
    /// (transfer), `models` (a list of `{model: DIR, parameters: {weight, density}}` or plain
    /// strings), `parameters` (global; `weight`/`density` here are defaults for every model),
    /// `dtype` (float32 | float16 | bfloat16, the output's storage type).
    public static func parse(_ text: String, file: String = "merge config") throws -> MergeConfig {
        func fail(_ key: String, _ m: String) -> MergeError { MergeError("\(file): \(key): \(m)") }
        let root: Any?
        do { root = try StrictYAML.load(text, file: file) } catch { throw MergeError("\(error)") }
        guard let top = root as? [String: Any] else { throw MergeError("\(file): expected a mapping with merge_method and models") }
        if let k = top.keys.sorted().first(where: { !topLevelKeys.contains($0) }) {
            throw fail(k, "unknown key (known: \(topLevelKeys.joined(separator: ", ")))")
        }
        guard let methodName = top["merge_method"] as? String else { throw fail("merge_method", "missing or not a string") }
        guard let method = MergeMethodName(rawValue: methodName) else {
            throw fail("merge_method", "unknown method \"\(methodName)\" (known: \(MergeMethodName.known))")
        }
        func string(_ key: String, in dict: [String: Any]) throws -> String? {
            guard let v = dict[key], !(v is NSNull) else { return nil }
            guard let s = v as? String, !s.isEmpty else { throw fail(key, "must be a non-empty string") }
            return s
        }
        func number(_ key: String, _ v: Any) throws -> Double {
            if let b = v as? Bool, type(of: v) == Bool.self { throw fail(key, "must be a number, got \(b)") }
            if let i = v as? Int { return Double(i) }
            if let d = v as? Double, d.isFinite { return d }
            throw fail(key, "must be a finite number, got \(v)")
        }
        let global = (top["parameters"] as? [String: Any]) ?? [:]
        if top["parameters"] != nil, !(top["parameters"] is [String: Any]) { throw fail("parameters", "must be a mapping") }
        if let k = global.keys.sorted().first(where: { !globalKeys.contains($0) }) {
            throw fail("parameters.\(k)", "unknown parameter (known: \(globalKeys.joined(separator: ", ")))")
        }
        let defaultWeight = try global["weight"].map { try number("parameters.weight", $0) } ?? 1
        let defaultDensity = try global["density"].map { try number("parameters.density", $0) } ?? 1

        guard let list = top["models"] as? [Any], !list.isEmpty else { throw fail("models", "missing or empty (a list of models)") }
        var models: [MergeInput] = []
        for (i, item) in list.enumerated() {
            let key = "models[\(i)]"
            var input = MergeInput(model: "", weight: defaultWeight, density: defaultDensity)
            if let s = item as? String {
                input.model = s
            } else if let d = item as? [String: Any] {
                guard let m = try string("model", in: d) else { throw fail(key, "needs a model") }
                input.model = m
                if let k = d.keys.sorted().first(where: { $0 != "model" && $0 != "parameters" }) {
                    throw fail("\(key).\(k)", "unknown key (known: model, parameters)")
                }
                if let p = d["parameters"] {
                    guard let p = p as? [String: Any] else { throw fail("\(key).parameters", "must be a mapping") }
                    if let k = p.keys.sorted().first(where: { !modelKeys.contains($0) }) {
                        throw fail("\(key).parameters.\(k)", "unknown parameter (known: \(modelKeys.joined(separator: ", ")))")
                    }
                    if let w = p["weight"] { input.weight = try number("\(key).parameters.weight", w) }
                    if let dv = p["density"] { input.density = try number("\(key).parameters.density", dv) }
                }
            } else {
                throw fail(key, "must be a model path or a mapping with model and parameters")
            }
            guard input.density >= 0, input.density <= 1 else {
                throw fail("\(key).parameters.density", "\(input.density) is outside [0, 1] (model \(input.model))")
            }
            models.append(input)
        }

        var c = MergeConfig(method: method, baseModel: try string("base_model", in: top),
                            oldBaseModel: try string("old_base_model", in: top), models: models)
        c.file = file
        if let v = global["lambda"] { c.lambda = try number("parameters.lambda", v) }
        if let v = global["normalize"] {
            guard let b = v as? Bool else { throw fail("parameters.normalize", "must be true or false") }
            c.normalize = b
        }
        func choice<T: RawRepresentable & CaseIterable>(_ key: String, _: T.Type) throws -> T? where T.RawValue == String {
            guard let v = global[key] else { return nil }
            guard let s = v as? String, let t = T(rawValue: s) else {
                throw fail("parameters.\(key)", "\(v) is not one of \(T.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return t
        }
        if let v = try choice("consensus", SignConsensus.self) ?? choice("consensus_method", SignConsensus.self) { c.consensus = v }
        if let v = try choice("disjoint_mean", DisjointMean.self) { c.disjointMean = v }
        if let v = global["rescale"] {
            // mergekit's boolean form, or the name of a DropRescale.
            if let b = v as? Bool { c.rescale = b ? .inverse : .none }
            else if let r = try choice("rescale", DropRescale.self) { c.rescale = r }
        }
        if let v = global["rescale_norm"] {
            guard let s = v as? String, s == "l1" else { throw fail("parameters.rescale_norm", "only l1 is supported") }
            c.rescale = .l1
        }
        if let v = try choice("density_scope", DensityScope.self) { c.densityScope = v }
        if let v = global["seed"] {
            guard let i = v as? Int, i >= 0 else { throw fail("parameters.seed", "must be a non-negative integer") }
            c.seed = UInt64(i)
        }
        if let v = global["alpha"] { c.alpha = try number("parameters.alpha", v) }
        if let v = global["beta"] { c.beta = try number("parameters.beta", v) }
        if let v = global["rank"] {
            guard let i = v as? Int, i > 0 else { throw fail("parameters.rank", "must be a positive integer") }
            c.rank = i
        }
        if let v = top["dtype"] ?? top["out_dtype"] {
            guard let s = v as? String, let d = OutputDType(rawValue: s) else {
                throw fail("dtype", "\(v) is not one of \(OutputDType.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            c.dtype = d
        }
        try c.validate()
        return c
    }

    /// Checks the combination of method and parameters (also for configs built in code).
    public func validate() throws {
        let f = file.isEmpty ? "merge config" : file
        func fail(_ m: String) -> MergeError { MergeError("\(f): \(m)") }
        guard lambda.isFinite else { throw fail("parameters.lambda: must be finite") }
        for (i, m) in models.enumerated() {
            guard m.weight.isFinite else { throw fail("models[\(i)].parameters.weight: must be finite (model \(m.model))") }
            guard m.density >= 0, m.density <= 1 else { throw fail("models[\(i)].parameters.density: \(m.density) is outside [0, 1] (model \(m.model))") }
        }
        switch method {
        case .linear, .loraConcat:
            break
        case .loraSVD:
            guard rank != nil else { throw fail("parameters.rank: lora_svd needs the rank of the combined adapter") }
        case .transfer:
            guard baseModel != nil else { throw fail("base_model: transfer needs the new base as base_model") }
            guard oldBaseModel != nil else { throw fail("old_base_model: transfer needs the base the fine-tunes were trained from") }
        case .lines:
            guard baseModel != nil else { throw fail("base_model: lines needs a base model") }
            guard alpha != nil, beta != nil else { throw fail("parameters: lines needs alpha and beta (layer ℓ of L is scaled by alpha + beta·ℓ/(L−1))") }
        default:
            guard baseModel != nil else { throw fail("base_model: \(method.rawValue) needs a base model") }
        }
        if method != .transfer, oldBaseModel != nil { throw fail("old_base_model: only transfer uses it") }
        if method.dropsAtRandom, let m = models.first(where: { $0.density == 0 }) , rescale == .inverse {
            throw fail("density 0 with rescale 1/density is undefined (model \(m.model))")
        }
    }
}

/// Finds the weights of a model named in a config: a directory holding `model.safetensors`
/// (and `config.json`), as Hugging Face writes it, or a Sculpt run directory, whose `final/`
/// holds them.
public enum ModelDirectory {
    public static func resolve(_ path: String, role: String) throws -> URL {
        let url = URL(fileURLWithPath: path)
        let fm = FileManager.default
        if fm.fileExists(atPath: url.appendingPathComponent("model.safetensors").path) { return url }
        let final = url.appendingPathComponent("final")
        if fm.fileExists(atPath: final.appendingPathComponent("model.safetensors").path) { return final }
        var isDir: ObjCBool = false
        if !fm.fileExists(atPath: url.path, isDirectory: &isDir) {
            throw MergeError("\(role) \(path): no such directory")
        }
        throw MergeError("\(role) \(path): no model.safetensors in it or in its final/")
    }
}
