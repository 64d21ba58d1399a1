import SculptCore
import Foundation

/// y = x·Wᵀ + b with W stored [out, in], as PyTorch's nn.Linear.
///
/// Two optional fine-tuning attachments keep the module tree (and so the HF names) intact:
/// `lora` adds scaling·(dropout(x)·Aᵀ)·Bᵀ (LoRA.swift), and `split` trains only a leading
/// block of rows or columns of W as its own variable (WeightSplit.swift, used by s2ft).
public final class Linear: Layer {
    public var training = true
    public let weight: Variable
    public let bias: Variable?
    /// A low-rank adapter; its parameters appear as `lora_A.weight` and `lora_B.weight`.
    public var lora: LoRAAdapter?
    /// A trainable leading block of W (s2ft); set with `split(_:count:)`, removed by `fold()`.
    public internal(set) var split: WeightSplit?
    /// Elastic width (weight-sharing super-networks): when set, the forward pass uses only the
    /// leading `activeOutFeatures` rows and/or `activeInFeatures` columns of W (and of b), so
    /// a sub-network trains and runs on leading slices of the shared weights.
    public var activeOutFeatures: Int?
    public var activeInFeatures: Int?
    /// Learned binary gates on groups of input columns (`--method gates`: one per attention
    /// head before the attention output, one per FFN channel before the FFN output). Its
    /// scores appear as the parameter `input_gate` while attached; extraction removes it.
    public var inputGate: UnitGate?
    /// W also kept in llama.cpp's blocks (a GGUF's Q8_0/Q4_0/Q4_1 matrix whose values W
    /// holds): inference on a few rows (decode) reads these bytes instead of W's floats. Set
    /// by `attachBlockWeight`, which checks they are W's; whoever changes W must clear it.
    public private(set) var blockWeight: BlockMatrix?

    public init(weight: Tensor, bias: Tensor?) {
        self.weight = Variable(weight, requiresGrad: true)
        self.bias = bias.map { Variable($0, requiresGrad: true) }
    }

    /// PyTorch's default initialisation: U(−1/√in, 1/√in) for weight and bias.
    public convenience init(_ inFeatures: Int, _ outFeatures: Int, bias: Bool = true, using rng: inout SeededRNG) {
        let bound = 1 / Float(inFeatures).squareRoot()
        let w = Tensor.randomUniform([outFeatures, inFeatures], low: -bound, high: bound, using: &rng)
        let b = bias ? Tensor.randomUniform([outFeatures], low: -bound, high: bound, using: &rng) : nil
        self.init(weight: w, bias: b)
    }

    public var inFeatures: Int { weight.value.shape[1] }
    public var outFeatures: Int { weight.value.shape[0] }

    public var localParameters: [(String, Variable)] {
        var p: [(String, Variable)] = [("weight", weight)]
        if let b = bias { p.append(("bias", b)) }
        if let l = lora { p.append(("lora_A.weight", l.a)); p.append(("lora_B.weight", l.b)) }
        if let s = split { p += s.namedTrainables }
        if let g = inputGate { p.append(("input_gate", g.scores)) }
        return p
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        if let g = inputGate { return ungatedForward(x * g.mask()) }
        return ungatedForward(x)
    }

    /// Rows up to which a forward without gradients uses `blockWeight`.
    static let blockWeightMaxRows = 8

    /// Keeps `w` for inference on few rows if it dequantizes to exactly this layer's W.
    /// - Returns: whether it was attached.
    @discardableResult
    public func attachBlockWeight(_ w: BlockMatrix, dequantized: Tensor) -> Bool {
        guard w.rows == outFeatures, w.cols == inFeatures, dequantized.shape == weight.value.shape,
              dequantized.maxAbsDifference(weight.value) == 0 else { return false }
        blockWeight = w
        return true
    }

    public func detachBlockWeight() { blockWeight = nil }

    func ungatedForward(_ x: Variable) -> Variable {
        if activeOutFeatures != nil || activeInFeatures != nil { return elasticForward(x) }
        if let bw = blockWeight, split == nil, !ExecutionContext.current.recordsGradients {
            let rows = x.value.count / max(inFeatures, 1)
            if rows <= Self.blockWeightMaxRows && x.value.shape.last == inFeatures {
                let out = Tensor(uninitializedShape: Array(x.value.shape.dropLast()) + [outFeatures])
                x.value.withUnsafePointer { xp in bw.multiply(xp, count: rows, into: out.storage.pointer, pool: ExecutionContext.pool) }
                if let b = bias {
                    b.value.withUnsafePointer { bp in
                        for r in 0..<rows { for o in 0..<outFeatures { out.storage.pointer[r * outFeatures + o] += bp[o] } }
                    }
                }
                var y = Variable(out)
                if let l = lora, !l.merged { y = y + l.delta(x, training: training) }
                return y
            }
        }
        var y = split.map { $0.forward(x, weight: weight.value, bias: bias) } ?? linear(x, weight: weight, bias: bias)
        if let l = lora, !l.merged { y = y + l.delta(x, training: training) }
        return y
    }
}

extension Linear {
    /// The output and input sizes the forward pass uses now.
    public var activeShape: (out: Int, in: Int) { (min(activeOutFeatures ?? outFeatures, outFeatures), min(activeInFeatures ?? inFeatures, inFeatures)) }

    /// W and b restricted to the active sizes (the full variables when nothing is sliced).
    public func activeParameters() -> (weight: Variable, bias: Variable?) {
        let (o, i) = activeShape
        var w = weight
        if o < outFeatures { w = w.slice(axis: 0, 0..<o) }
        if i < inFeatures { w = w.slice(axis: 1, 0..<i) }
        return (w, bias.map { o < outFeatures ? $0.slice(axis: 0, 0..<o) : $0 })
    }

    /// True when the forward pass is a plain x·Wᵀ + b (no adapter or split attached).
    public var isPlain: Bool { split == nil && lora == nil }

    /// No input gate and no elastic width: W is used whole, so it can be stacked row-wise
    /// with other layers' weights into one GEMM.
    private var usesWholeUngatedWeight: Bool { inputGate == nil && activeOutFeatures == nil && activeInFeatures == nil }

    /// True when W can be stacked and an unmerged LoRA adapter's update added into this
    /// layer's columns of the stacked output (`ColumnUpdate`): no s2ft split.
    public var stacksWithLoRA: Bool { usesWholeUngatedWeight && split == nil }

    /// True when W, with an s2ft row block if any, can be stacked: no LoRA, no column split.
    public var stacksByRows: Bool { usesWholeUngatedWeight && lora == nil && split?.axis != .columns }

    /// Forward through the leading slice of W selected by the active sizes.
    func elasticForward(_ x: Variable) -> Variable {
        precondition(isPlain, "Linear: elastic width cannot be combined with s2ft or LoRA")
        let (w, b) = activeParameters()
        return linear(x, weight: w, bias: b)
    }
}

/// Real-valued gate scores for `units` groups of `unitSize` consecutive features, used in
/// the forward pass as 0/1 (score > 0.5) with a straight-through gradient.
public final class UnitGate {
    public let scores: Variable
    public let unitSize: Int

    public init(units: Int, unitSize: Int, initial: Float = 1) {
        scores = Variable(Tensor(shape: [units], repeating: initial), requiresGrad: true)
        self.unitSize = unitSize
    }

    public var units: Int { scores.value.count }
    /// Indices of the units whose gate is open.
    public var kept: [Int] { (0..<units).filter { scores.value[flat: $0] > 0.5 } }

    /// The binary gate of every feature: [units · unitSize].
    public func mask() -> Variable {
        let b = scores.binarizedStraightThrough()
        guard unitSize > 1 else { return b }
        return (b.reshaped([units, 1]) * Variable(Tensor(shape: [1, unitSize], repeating: 1))).reshaped([units * unitSize])
    }
}

/// A lookup table of `count` vectors of size `dimension`.
public final class Embedding: Module {
    public var training = true
    public let weight: Variable

    /// A row that gets no gradient from lookups (PyTorch's `padding_idx`).
    public var paddingIndex: Int32?

    public init(weight: Tensor) { self.weight = Variable(weight, requiresGrad: true) }

    public convenience init(_ count: Int, _ dimension: Int, using rng: inout SeededRNG) {
        self.init(weight: Tensor.randomNormal([count, dimension], using: &rng))
    }

    /// Elastic width: the leading `activeDimension` features of each vector.
    public var activeDimension: Int?

    public var localParameters: [(String, Variable)] { [("weight", weight)] }

    /// Vectors for `ids` laid out with `shape`; the result has shape `shape + [dimension]`.
    public func callAsFunction(_ ids: [Int32], shape: [Int]) -> Variable {
        let v = embedding(weight, ids: ids, shape: shape, paddingIndex: paddingIndex)
        if let n = activeDimension, n < weight.value.shape[1] { return v.slice(axis: shape.count, 0..<n) }
        return v
    }
}

/// Layer normalisation over the last dimension.
public final class LayerNorm: Layer {
    public var training = true
    public let weight: Variable
    public let bias: Variable
    public let eps: Float

    public init(_ dimension: Int, eps: Float = 1e-5) {
        weight = Variable(Tensor.ones([dimension]), requiresGrad: true)
        bias = Variable(Tensor.zeros([dimension]), requiresGrad: true)
        self.eps = eps
    }

    public var localParameters: [(String, Variable)] { [("weight", weight), ("bias", bias)] }
    public func callAsFunction(_ x: Variable) -> Variable { layerNorm(x, weight: weight, bias: bias, eps: eps) }
}

/// RMS normalisation over the last dimension with a learned scale (LLaMA's RMSNorm).
public final class RMSNorm: Layer {
    public var training = true
    public let weight: Variable
    public let eps: Float

    public init(_ dimension: Int, eps: Float = 1e-6) {
        weight = Variable(Tensor.ones([dimension]), requiresGrad: true)
        self.eps = eps
    }

    /// Elastic width: normalise the leading `activeDimension` features with those weights.
    public var activeDimension: Int?

    public var localParameters: [(String, Variable)] { [("weight", weight)] }
    public func callAsFunction(_ x: Variable) -> Variable {
        if let n = activeDimension, n < weight.value.count { return rmsNorm(x, weight: weight.slice(axis: 0, 0..<n), eps: eps) }
        return rmsNorm(x, weight: weight, eps: eps)
    }
}

/// 2-D convolution over NCHW input, weight [out, in, kh, kw].
public final class Conv2d: Layer {
    public var training = true
    public let weight: Variable
    public let bias: Variable?
    public let stride: (Int, Int)
    public let padding: (Int, Int)

    public init(weight: Tensor, bias: Tensor?, stride: (Int, Int) = (1, 1), padding: (Int, Int) = (0, 0)) {
        self.weight = Variable(weight, requiresGrad: true)
        self.bias = bias.map { Variable($0, requiresGrad: true) }
        self.stride = stride
        self.padding = padding
    }

    public convenience init(_ inChannels: Int, _ outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, bias: Bool = true, using rng: inout SeededRNG) {
        let bound = 1 / Float(inChannels * kernel * kernel).squareRoot()
        let w = Tensor.randomUniform([outChannels, inChannels, kernel, kernel], low: -bound, high: bound, using: &rng)
        let b = bias ? Tensor.randomUniform([outChannels], low: -bound, high: bound, using: &rng) : nil
        self.init(weight: w, bias: b, stride: (stride, stride), padding: (padding, padding))
    }

    public var localParameters: [(String, Variable)] {
        bias.map { [("weight", weight), ("bias", $0)] } ?? [("weight", weight)]
    }

    /// Elastic width (weight-sharing CNN super-networks), as `Linear.activeOutFeatures`: when
    /// set, the forward pass uses only the leading output filters and/or input channels of W
    /// (and of b), so gradients reach those slices only.
    public var activeOutChannels: Int?
    public var activeInChannels: Int?

    public var inChannels: Int { weight.value.shape[1] }
    public var outChannels: Int { weight.value.shape[0] }

    public func callAsFunction(_ x: Variable) -> Variable {
        guard activeOutChannels != nil || activeInChannels != nil else {
            return conv2d(x, weight: weight, bias: bias, stride: stride, padding: padding)
        }
        let o = min(activeOutChannels ?? outChannels, outChannels), i = min(activeInChannels ?? inChannels, inChannels)
        var w = weight
        if o < outChannels { w = w.slice(axis: 0, 0..<o) }
        if i < inChannels { w = w.slice(axis: 1, 0..<i) }
        let b = bias.map { o < outChannels ? $0.slice(axis: 0, 0..<o) : $0 }
        return conv2d(x, weight: w, bias: b, stride: stride, padding: padding)
    }
}

/// Batch normalisation over channels (axis 1) with running statistics, as nn.BatchNorm2d.
public final class BatchNorm2d: Layer {
    public var training = true
    public let weight: Variable
    public let bias: Variable
    public let runningMean: Variable
    public let runningVar: Variable
    public let momentum: Float
    public let eps: Float

    public init(_ channels: Int, momentum: Float = 0.1, eps: Float = 1e-5) {
        weight = Variable(Tensor.ones([channels]), requiresGrad: true)
        bias = Variable(Tensor.zeros([channels]), requiresGrad: true)
        runningMean = Variable(Tensor.zeros([channels]))
        runningVar = Variable(Tensor.ones([channels]))
        self.momentum = momentum
        self.eps = eps
    }

    /// Elastic width: when set, only the leading channels' affine weights and running
    /// statistics are used (and, in training mode, updated), matching a Conv2d that produces
    /// only its leading filters.
    public var activeChannels: Int?
    /// When set, training-mode batches update the running statistics as a plain average over
    /// the batches seen (PyTorch's `momentum=None`) and this counts them. BatchNorm
    /// recalibration of a sub-network uses it so a few batches give exact statistics instead
    /// of a momentum blend with whatever was there.
    public var cumulativeBatches: Int?
    /// Learned binary gates on the output channels (`--method gates` on a CNN: every
    /// BatchNorm of a stage shares its stage's gate, so a closed gate removes that channel
    /// from the whole stage). Its scores appear as the parameter `output_gate` while attached.
    public var outputGate: UnitGate?

    public var channels: Int { weight.value.shape[0] }

    public var localParameters: [(String, Variable)] {
        [("weight", weight), ("bias", bias)] + (outputGate.map { [("output_gate", $0.scores)] } ?? [])
    }
    public var localBuffers: [(String, Variable)] { [("running_mean", runningMean), ("running_var", runningVar)] }

    /// Sets the running statistics back to PyTorch's initial values (mean 0, variance 1).
    public func resetRunningStatistics() {
        runningMean.value = Tensor.zeros([channels])
        runningVar.value = Tensor.ones([channels])
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        let c = min(activeChannels ?? channels, channels), sliced = c < channels
        let w = sliced ? weight.slice(axis: 0, 0..<c) : weight, b = sliced ? bias.slice(axis: 0, 0..<c) : bias
        let rm = sliced ? runningMean.value.slice(axis: 0, 0..<c) : runningMean.value
        let rv = sliced ? runningVar.value.slice(axis: 0, 0..<c) : runningVar.value
        let (y, mean, variance) = batchNorm(x, weight: w, bias: b, runningMean: rm, runningVar: rv, batchStatistics: training, eps: eps)
        if training {
            // Running variance uses the unbiased estimate, as PyTorch does.
            let n = Float(x.value.count / x.value.shape[1])
            let unbiased = variance.affine(n / Swift.max(n - 1, 1))
            var m = momentum
            if let k = cumulativeBatches { m = 1 / Float(k + 1); cumulativeBatches = k + 1 }
            let newMean = rm.affine(1 - m) + mean.affine(m), newVar = rv.affine(1 - m) + unbiased.affine(m)
            runningMean.value = sliced ? Tensor.concat([newMean, runningMean.value.slice(axis: 0, c..<channels)], axis: 0) : newMean
            runningVar.value = sliced ? Tensor.concat([newVar, runningVar.value.slice(axis: 0, c..<channels)], axis: 0) : newVar
        }
        guard let g = outputGate else { return y }
        let m = g.mask()
        let units = m.value.count
        return y * (units == c ? m : m.slice(axis: 0, 0..<c)).reshaped([1, c] + Array(repeating: 1, count: max(0, y.value.rank - 2)))
    }
}

/// Inverted dropout with its own seeded generator (so runs are reproducible and the
/// generator's state can be checkpointed).
public final class Dropout: Layer {
    public var training = true
    public let p: Float
    public var rng: SeededRNG

    public init(p: Float, rng: SeededRNG) {
        self.p = p
        self.rng = rng
    }

    public func callAsFunction(_ x: Variable) -> Variable {
        guard training, p > 0 else { return x }
        return dropout(x, p: p, using: &rng)
    }
}

/// A parameter-free elementwise activation or reshaping step.
public final class Activation: Layer {
    public enum Kind: String, Sendable { case relu, gelu, geluTanh, silu, tanh, sigmoid, flatten, globalAveragePool }
    public var training = true
    public let kind: Kind
    public init(_ kind: Kind) { self.kind = kind }

    public func callAsFunction(_ x: Variable) -> Variable {
        switch kind {
        case .relu: return x.relu()
        case .gelu: return x.gelu()
        case .geluTanh: return x.geluTanh()
        case .silu: return x.silu()
        case .tanh: return x.tanh()
        case .sigmoid: return x.sigmoid()
        case .flatten: return x.reshaped([x.shape[0], -1])
        case .globalAveragePool: return x.mean(axes: [2, 3])
        }
    }
}

/// Layers applied in order; children are named "0", "1", … as in nn.Sequential.
public final class Sequential: Layer {
    public var training = true
    public let layers: [any Layer]

    public init(_ layers: [any Layer]) { self.layers = layers }

    public var children: [(String, any Module)] { layers.enumerated().map { (String($0.offset), $0.element as any Module) } }

    public func callAsFunction(_ x: Variable) -> Variable { layers.reduce(x) { $1($0) } }
}
