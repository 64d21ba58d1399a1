import SculptCore
import Foundation

/// Per-parameter optimiser state, saved and restored by name with checkpoints.
public struct OptimizerState: Sendable {
    public var step: Int = 0
    public var buffers: [Tensor] = []

    /// Public so a checkpoint can rebuild the state of a freshly made optimiser.
    public init(step: Int = 0, buffers: [Tensor] = []) {
        self.step = step
        self.buffers = buffers
    }
}

/// Updates parameters from their gradients. State is keyed by parameter name so a
/// checkpoint can be restored into a freshly built model.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    var states: [String: OptimizerState] { get set }
    /// Applies one update to every named parameter that has a gradient.
    func step(_ parameters: [(name: String, parameter: Variable)])
}

/// AdamW exactly as `torch.optim.AdamW`: decoupled weight decay p ← p·(1 − lr·wd), then the
/// bias-corrected Adam step p ← p − lr/(1−β₁ᵗ) · m / (√v/√(1−β₂ᵗ) + ε).
///
/// `updateMasks` restrict updates (and the decay) to the masked entries of a parameter —
/// sparse fine-tuning trains chosen weights only and must not move the others.
public final class AdamW: Optimizer {
    public var learningRate: Float
    public let beta1: Float, beta2: Float, eps: Float, weightDecay: Float
    public var states: [String: OptimizerState] = [:]
    public var updateMasks: [String: Tensor] = [:]
    /// Parameters exempt from weight decay (e.g. biases and LayerNorm weights).
    public var noDecay: (String) -> Bool = { _ in false }

    public init(learningRate: Float = 1e-3, beta1: Float = 0.9, beta2: Float = 0.999, eps: Float = 1e-8, weightDecay: Float = 0.01) {
        self.learningRate = learningRate
        self.beta1 = beta1
        self.beta2 = beta2
        self.eps = eps
        self.weightDecay = weightDecay
    }

    public func step(_ parameters: [(name: String, parameter: Variable)]) {
        for (name, p) in parameters {
            guard let g = p.grad else { continue }
            var state = states[name] ?? OptimizerState(step: 0, buffers: [Tensor.zeros(p.value.shape), Tensor.zeros(p.value.shape)])
            state.step += 1
            let t = Float(state.step)
            let bc1 = 1 - Foundation.pow(beta1, t), bc2 = 1 - Foundation.pow(beta2, t)
            let decay = noDecay(name) ? 0 : weightDecay
            let mask = updateMasks[name]
            var m = state.buffers[0], v = state.buffers[1]
            m.makeUnique(); v.makeUnique()
            let count = p.value.count
            p.value.withUnsafeMutablePointer { w in
                // Element-wise and independent, so split over the pool (same results bit for bit).
                let g = UnsafePointer(g.storage.pointer), mp = m.storage.pointer, vp = v.storage.pointer
                let mk = mask.map { UnsafePointer($0.storage.pointer) }
                let (lr, b1, b2, eps) = (learningRate, beta1, beta2, self.eps)
                ExecutionContext.pool.parallelRanges(count, minimumChunk: 1 << 16) { r in
                    adamWKernel(w: w + r.lowerBound, g: g + r.lowerBound, m: mp + r.lowerBound, v: vp + r.lowerBound,
                                mask: mk.map { $0 + r.lowerBound }, count: r.count,
                                lr: lr, beta1: b1, beta2: b2, eps: eps, decay: decay, stepSize: lr / bc1, bc2Sqrt: bc2.squareRoot())
                }
            }
            state.buffers = [m, v]
            states[name] = state
        }
    }
}

/// One fused AdamW pass over a parameter buffer.
@inline(never)
func adamWKernel(w: UnsafeMutablePointer<Float>, g: UnsafePointer<Float>, m: UnsafeMutablePointer<Float>, v: UnsafeMutablePointer<Float>,
                 mask: UnsafePointer<Float>?, count: Int, lr: Float, beta1: Float, beta2: Float, eps: Float, decay: Float, stepSize: Float, bc2Sqrt: Float) {
    let keepAfterDecay = 1 - lr * decay
    @inline(__always) func update(_ i: Int) {
        let gi = g[i]
        let mi = beta1 * m[i] + (1 - beta1) * gi
        let vi = beta2 * v[i] + (1 - beta2) * gi * gi
        m[i] = mi
        v[i] = vi
        let denom = vi.squareRoot() / bc2Sqrt + eps
        w[i] = w[i] * keepAfterDecay - stepSize * mi / denom
    }
    guard let mask else {
        // The common case, as a loop without a branch so that it vectorises.
        for i in 0..<count { update(i) }
        return
    }
    for i in 0..<count where mask[i] != 0 { update(i) }
}

/// SGD as `torch.optim.SGD`: coupled weight decay g ← g + wd·p; momentum buffer
/// b ← μ·b + g (b = g on the first step); Nesterov uses g + μ·b; p ← p − lr·(update).
public final class SGD: Optimizer {
    public var learningRate: Float
    public let momentum: Float, weightDecay: Float, nesterov: Bool
    public var states: [String: OptimizerState] = [:]

    public init(learningRate: Float, momentum: Float = 0, weightDecay: Float = 0, nesterov: Bool = false) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.nesterov = nesterov
    }

    public func step(_ parameters: [(name: String, parameter: Variable)]) {
        for (name, p) in parameters {
            guard var d = p.grad else { continue }
            if weightDecay != 0 { d = d + p.value.affine(weightDecay) }
            var state = states[name] ?? OptimizerState()
            state.step += 1
            if momentum != 0 {
                var buf: Tensor
                if state.buffers.isEmpty { buf = d.copy() } else { buf = state.buffers[0].affine(momentum) + d }
                state.buffers = [buf]
                d = nesterov ? d + buf.affine(momentum) : buf
                buf = Tensor.zeros([0])
            }
            p.value.addScaled(d, -learningRate)
            states[name] = state
        }
    }
}

/// Learning-rate schedules as functions of the optimiser step (0-based).
public enum LRSchedule: Sendable, Equatable {
    case constant
    /// Linear warm-up from 0 over `warmupSteps`, then linear decay to 0 at `totalSteps`
    /// (transformers' `get_linear_schedule_with_warmup`).
    case linear(warmupSteps: Int, totalSteps: Int)
    /// Linear warm-up, then half-cosine decay to 0 (`get_cosine_schedule_with_warmup`).
    case cosine(warmupSteps: Int, totalSteps: Int)

    /// The multiplier of the base learning rate at `step`.
    public func factor(at step: Int) -> Float {
        switch self {
        case .constant: return 1
        case .linear(let w, let total):
            if step < w { return Float(step) / Float(max(1, w)) }
            return max(0, Float(total - step) / Float(max(1, total - w)))
        case .cosine(let w, let total):
            if step < w { return Float(step) / Float(max(1, w)) }
            let progress = Float(step - w) / Float(max(1, total - w))
            return max(0, 0.5 * (1 + Foundation.cos(Float.pi * progress)))
        }
    }
}

/// Scales gradients so their global L2 norm is at most `maxNorm`, like
/// `torch.nn.utils.clip_grad_norm_` (factor maxNorm/(norm + 1e-6), applied only when < 1).
/// Returns the norm before clipping.
@discardableResult
public func clipGradientNorm(_ parameters: [(name: String, parameter: Variable)], maxNorm: Float) -> Float {
    var total: Double = 0
    for (_, p) in parameters {
        guard let g = p.grad else { continue }
        g.withUnsafePointer { gp in for i in 0..<g.count { total += Double(gp[i]) * Double(gp[i]) } }
    }
    let norm = Float(total.squareRoot())
    let factor = maxNorm / (norm + 1e-6)
    if factor < 1 {
        for (_, p) in parameters where p.grad != nil { p.grad = p.grad!.affine(factor) }
    }
    return norm
}
