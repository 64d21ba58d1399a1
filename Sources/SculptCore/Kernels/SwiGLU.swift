import Foundation

// SwiGLU, the gated MLP activation of LLaMA-family decoders: y = silu(gate) · up, in one pass
// (two elementwise ops and a temporary otherwise). Plain twins below.

@inline(__always) private func load(_ p: UnsafePointer<Float>, _ i: Int) -> F16x {
    UnsafeRawPointer(p + i).loadUnaligned(as: F16x.self)
}
@inline(__always) private func store(_ v: F16x, _ p: UnsafeMutablePointer<Float>, _ i: Int) {
    UnsafeMutableRawPointer(p + i).storeBytes(of: v, as: F16x.self)
}

/// y = silu(gate) · up elementwise.
public func swigluForward(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool) {
    let gb = UncheckedSendableBox(gate), ub = UncheckedSendableBox(up), yb = UncheckedSendableBox(y)
    parallelChunks(count, pool: pool) { r in
        var i = r.lowerBound
        while i + 16 <= r.upperBound {
            let g = load(gb.value, i)
            store(g * simdSigmoid(g) * load(ub.value, i), yb.value, i)
            i += 16
        }
        while i < r.upperBound { let g = gb.value[i]; yb.value[i] = g / (1 + Foundation.exp(-g)) * ub.value[i]; i += 1 }
    }
}

/// d gate = dy · up · silu′(gate), d up = dy · silu(gate).
public func swigluBackward(_ gate: UnsafePointer<Float>, _ up: UnsafePointer<Float>, _ dy: UnsafePointer<Float>,
                           dgate: UnsafeMutablePointer<Float>, dup: UnsafeMutablePointer<Float>, count: Int, pool: ThreadPool) {
    let gb = UncheckedSendableBox(gate), ub = UncheckedSendableBox(up), db = UncheckedSendableBox(dy)
    let dgb = UncheckedSendableBox(dgate), dub = UncheckedSendableBox(dup)
    parallelChunks(count, pool: pool) { r in
        var i = r.lowerBound
        while i + 16 <= r.upperBound {
            let g = load(gb.value, i), s = simdSigmoid(g), d = load(db.value, i)
            store(d * load(ub.value, i) * s * (1 + g * (1 - s)), dgb.value, i)
            store(d * g * s, dub.value, i)
            i += 16
        }
        while i < r.upperBound {
            let g = gb.value[i], s = 1 / (1 + Foundation.exp(-g)), d = db.value[i]
            dgb.value[i] = d * ub.value[i] * s * (1 + g * (1 - s))
            dub.value[i] = d * g * s
            i += 1
        }
    }
}

/// Tensor form of the backward pass: (d gate, d up).
public func swigluBackward(gate: Tensor, up: Tensor, upstream g: Tensor) -> (Tensor, Tensor) {
    let dg = Tensor(uninitializedShape: gate.shape), du = Tensor(uninitializedShape: up.shape)
    swigluBackward(gate.storage.pointer, up.storage.pointer, g.storage.pointer, dgate: dg.storage.pointer, dup: du.storage.pointer,
                   count: gate.count, pool: ExecutionContext.pool)
    return (dg, du)
}

/// Plain twin of `swigluForward`.
public func swigluReference(_ gate: [Float], _ up: [Float]) -> [Float] {
    zip(gate, up).map { g, u in Float(Double(g) / (1 + Foundation.exp(-Double(g))) * Double(u)) }
}
