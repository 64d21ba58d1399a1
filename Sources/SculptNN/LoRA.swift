import SculptCore
import Foundation

/// A LoRA adapter on a `Linear` layer, with PEFT's semantics (peft.tuners.lora.LoraLayer):
/// y = x·Wᵀ + b + scaling·(dropout(x)·Aᵀ)·Bᵀ, A [r, in] initialised kaiming-uniform with
/// a = √5 (i.e. U(−1/√in, 1/√in)), B [out, r] zeros, so the adapted layer starts equal to
/// the base. scaling = alpha / r, or alpha / √r with rsLoRA.
public final class LoRAAdapter {
    public let a: Variable
    public let b: Variable
    public let rank: Int
    public let alpha: Float
    public let useRSLoRA: Bool
    public let scaling: Float
    /// Dropout probability applied to the input of A only (as PEFT's `lora_dropout`).
    public let dropout: Float
    /// The dropout's own generator, so runs are reproducible and checkpointable.
    public var rng: SeededRNG
    /// True while B·A is folded into the base weight (forward then skips the adapter).
    public internal(set) var merged = false

    public init(inFeatures: Int, outFeatures: Int, rank: Int, alpha: Float, dropout: Float = 0, useRSLoRA: Bool = false, rng: inout SeededRNG) {
        precondition(rank > 0, "LoRA rank must be positive, got \(rank)")
        precondition(dropout >= 0 && dropout < 1, "LoRA dropout must be in [0, 1), got \(dropout)")
        let bound = 1 / Float(inFeatures).squareRoot()
        a = Variable(Tensor.randomUniform([rank, inFeatures], low: -bound, high: bound, using: &rng), requiresGrad: true)
        b = Variable(Tensor.zeros([outFeatures, rank]), requiresGrad: true)
        self.rank = rank
        self.alpha = alpha
        self.useRSLoRA = useRSLoRA
        scaling = useRSLoRA ? alpha / Float(rank).squareRoot() : alpha / Float(rank)
        self.dropout = dropout
        self.rng = rng.split()
    }

    /// scaling·(dropout(x)·Aᵀ)·Bᵀ. The scaling is applied to the rank-r intermediate, which is
    /// the same product and touches r instead of `out` columns.
    public func delta(_ x: Variable, training: Bool) -> Variable {
        matmul(hidden(x, training: training), b, transposeB: true)
    }

    /// The rank-r intermediate scaling·dropout(x)·Aᵀ, whose product with Bᵀ is the update
    /// (`ColumnUpdate` adds it inside a stacked projection's output).
    public func hidden(_ x: Variable, training: Bool) -> Variable {
        let input = (training && dropout > 0) ? SculptCore.dropout(x, p: dropout, using: &rng) : x
        return matmul(input, a, transposeB: true) * scaling
    }

    /// scaling·B·A, the adapter as a dense update of W [out, in].
    public var deltaWeight: Tensor { Tensor.matmul(b.value, a.value).affine(scaling) }
}

extension Linear {
    /// Folds the adapter into W (W += scaling·B·A); forward then costs one matmul.
    public func mergeLoRA() {
        guard let l = lora, !l.merged else { return }
        weight.value.addScaled(l.deltaWeight)
        l.merged = true
    }

    /// Undoes `mergeLoRA` (W −= scaling·B·A): equal to the unmerged weight up to rounding.
    public func unmergeLoRA() {
        guard let l = lora, l.merged else { return }
        weight.value.addScaled(l.deltaWeight, -1)
        l.merged = false
    }
}

/// Which modules receive adapters, with PEFT's `target_modules` semantics: a string is a
/// regular expression that must match the module's full dotted name (`re.fullmatch`); a list
/// matches a name equal to an entry or ending with "." + entry.
public enum TargetModules: Sendable, Equatable, CustomStringConvertible {
    case regex(String)
    case names([String])

    /// PEFT's default for BERT (TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING["bert"]).
    public static let bertDefault = TargetModules.names(["query", "value"])

    public func matches(_ name: String) throws -> Bool {
        switch self {
        case .regex(let pattern):
            let re: Regex<AnyRegexOutput>
            do { re = try Regex(pattern) } catch { throw LoRAError.badPattern(pattern, "\(error)") }
            return name.wholeMatch(of: re) != nil
        case .names(let list):
            return list.contains { name == $0 || name.hasSuffix("." + $0) }
        }
    }

    public var description: String {
        switch self {
        case .regex(let p): return "regex \"\(p)\""
        case .names(let l): return "[" + l.map { "\"\($0)\"" }.joined(separator: ", ") + "]"
        }
    }
}

public enum LoRAError: Error, CustomStringConvertible, Equatable {
    case noMatch(TargetModules, candidates: [String])
    case unsupportedModule(name: String, type: String)
    case alreadyAdapted(String)
    case badPattern(String, String)

    public var description: String {
        switch self {
        case .noMatch(let t, let c):
            return "LoRA target modules \(t) matched no module; Linear modules are e.g. \(c.prefix(4).joined(separator: ", "))\(c.count > 4 ? ", …" : "")"
        case .unsupportedModule(let n, let t): return "LoRA target \(n) is a \(t), not a Linear layer (only Linear layers can be adapted)"
        case .alreadyAdapted(let n): return "module \(n) already has a LoRA adapter"
        case .badPattern(let p, let e): return "target_modules regex \"\(p)\" is invalid: \(e)"
        }
    }
}

/// True when `name` (a module or parameter name) lies inside one of `modulesToSave`, with
/// PEFT's rule `(^|.*\.)m($|\..*)`: the entry must match whole dotted components.
public func isInModulesToSave(_ name: String, _ modulesToSave: [String]) -> Bool {
    let parts = name.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
    for m in modulesToSave {
        let mp = m.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard mp.count <= parts.count else { continue }
        for start in 0...(parts.count - mp.count) where Array(parts[start..<(start + mp.count)]) == mp { return true }
    }
    return false
}

/// Attaches LoRA adapters to every `Linear` whose dotted name matches `targetModules` and
/// returns the matched names in tree order. Like `get_peft_model`, it then freezes every
/// other parameter except those inside `modulesToSave` (e.g. a new classifier head), and
/// modules inside `modulesToSave` are never adapted. A match on a non-Linear module, or no
/// match at all, throws (naming the patterns).
@discardableResult
public func applyLoRA(to root: any Module, targetModules: TargetModules = .bertDefault, rank: Int, alpha: Float,
                      dropout: Float = 0, useRSLoRA: Bool = false, modulesToSave: [String] = [],
                      rng: inout SeededRNG) throws -> [String] {
    var found: [(String, Linear)] = []
    var linears: [String] = []
    var failure: Error?
    root.visitModules { name, module in
        guard failure == nil, !name.isEmpty else { return }
        if module is Linear { linears.append(name) }
        if isInModulesToSave(name, modulesToSave) { return }
        do {
            guard try targetModules.matches(name) else { return }
            guard let linear = module as? Linear else {
                failure = LoRAError.unsupportedModule(name: name, type: String(describing: type(of: module)))
                return
            }
            if linear.lora != nil { failure = LoRAError.alreadyAdapted(name); return }
            found.append((name, linear))
        } catch { failure = error }
    }
    if let failure { throw failure }
    guard !found.isEmpty else { throw LoRAError.noMatch(targetModules, candidates: linears) }
    // Adapters attached by an earlier call stay trainable.
    root.setTrainable(false) { !isInModulesToSave($0, modulesToSave) && !$0.hasSuffix(".lora_A.weight") && !$0.hasSuffix(".lora_B.weight") }
    for (_, linear) in found {
        linear.lora = LoRAAdapter(inFeatures: linear.inFeatures, outFeatures: linear.outFeatures, rank: rank, alpha: alpha,
                                  dropout: dropout, useRSLoRA: useRSLoRA, rng: &rng)
    }
    return found.map(\.0)
}

extension Module {
    /// Every (name, Linear) pair in the tree that carries a LoRA adapter.
    public func loraLayers() -> [(name: String, layer: Linear)] {
        var out: [(String, Linear)] = []
        visitModules { n, m in if let l = m as? Linear, l.lora != nil { out.append((n, l)) } }
        return out
    }

    public func mergeLoRA() { for (_, l) in loraLayers() { l.mergeLoRA() } }
    public func unmergeLoRA() { for (_, l) in loraLayers() { l.unmergeLoRA() } }

    /// Merges every adapter into its base weight and removes it, leaving a plain model whose
    /// names and shapes are the base checkpoint's (for exporting a full HF model).
    public func mergeAndUnloadLoRA() {
        for (_, l) in loraLayers() { l.mergeLoRA(); l.lora = nil }
    }
}
