import Foundation
import SculptCore

/// How an encoding becomes a feature vector for a predictor.
public enum FeatureKind: String, Codable, Sendable {
    /// One indicator per (dimension, choice); a blank slot gives all zeros. Ridge on one-hot
    /// features fits any additive function of the choices exactly.
    case oneHot
    /// One value per dimension: the chosen value scaled to [0, 1] by the dimension's range;
    /// a blank slot gives 0.
    case normalized
    /// The normalized values, then every product of two of them (squares included): ridge on
    /// these fits quantities that grow with products of sizes (a stage's blocks × its width,
    /// one width × the next), such as latency, MACs and parameters.
    case quadratic
}

public struct FeatureEncoder: Sendable {
    public let space: SearchSpace
    public let kind: FeatureKind
    public init(space: SearchSpace, kind: FeatureKind) { self.space = space; self.kind = kind }

    public var width: Int {
        switch kind {
        case .oneHot: return space.dimensions.reduce(0) { $0 + $1.choices.count }
        case .normalized: return space.count
        case .quadratic: return space.count + space.count * (space.count + 1) / 2
        }
    }

    public func features(_ e: [Int]) -> [Double] {
        if kind == .quadratic {
            let v = FeatureEncoder(space: space, kind: .normalized).features(e)
            var out = v
            out.reserveCapacity(width)
            for i in v.indices { for j in i..<v.count { out.append(v[i] * v[j]) } }
            return out
        }
        var out = [Double](repeating: 0, count: width)
        var offset = 0
        for (i, d) in space.dimensions.enumerated() {
            switch kind {
            case .oneHot:
                if e[i] >= 0 { out[offset + e[i]] = 1 }
                offset += d.choices.count
            case .normalized, .quadratic:
                guard e[i] >= 0 else { continue }
                let lo = Double(d.choices.min()!), hi = Double(d.choices.max()!)
                out[i] = hi > lo ? (Double(d.choices[e[i]]) - lo) / (hi - lo) : 1
            }
        }
        return out
    }
}

public protocol Regressor: Sendable {
    func predict(_ x: [Double]) -> Double
}

public enum PredictorError: Error, CustomStringConvertible, Equatable {
    case tooFewSamples(Int, needed: Int)
    case notPositiveDefinite
    public var description: String {
        switch self {
        case .tooFewSamples(let n, let k): return "predictor: \(n) samples, at least \(k) needed for cross-validation"
        case .notPositiveDefinite: return "ridge: normal equations are not positive definite"
        }
    }
}

// MARK: - Ridge regression

/// Ridge regression in closed form: centred normal equations (XᵀX + λI)w = Xᵀy solved by
/// Cholesky; the intercept is not penalised.
public struct RidgeRegressor: Regressor {
    public var weights: [Double]
    public var intercept: Double
    public var lambda: Double

    public static let lambdaGrid: [Double] = [1e-6, 1e-4, 1e-3, 1e-2, 0.1, 1, 10, 100, 1000]

    public static func fit(_ x: [[Double]], _ y: [Double], lambda: Double) throws -> RidgeRegressor {
        let n = x.count, d = x[0].count
        var mean = [Double](repeating: 0, count: d)
        for row in x { for j in 0..<d { mean[j] += row[j] } }
        for j in 0..<d { mean[j] /= Double(n) }
        let ym = y.reduce(0, +) / Double(n)
        var a = [Double](repeating: 0, count: d * d), b = [Double](repeating: 0, count: d)
        var c = [Double](repeating: 0, count: d)
        for (r, row) in x.enumerated() {
            for j in 0..<d { c[j] = row[j] - mean[j] }
            let yc = y[r] - ym
            for j in 0..<d where c[j] != 0 {
                b[j] += c[j] * yc
                let cj = c[j]
                for k in j..<d { a[j * d + k] += cj * c[k] }
            }
        }
        for j in 0..<d {
            a[j * d + j] += lambda
            for k in 0..<j { a[j * d + k] = a[k * d + j] }
        }
        let w = try choleskySolve(a, b, d)
        var intercept = ym
        for j in 0..<d { intercept -= w[j] * mean[j] }
        return RidgeRegressor(weights: w, intercept: intercept, lambda: lambda)
    }

    /// λ from `lambdaGrid` by k-fold CV (lowest RMSE), then refit on all data.
    public static func fitCV(_ x: [[Double]], _ y: [Double], folds: [[Int]]) throws -> (RidgeRegressor, Double) {
        var best = (lambda: 1.0, rmse: Double.infinity)
        for l in lambdaGrid {
            let e = try crossValidatedRMSE(x, y, folds: folds) { try RidgeRegressor.fit($0, $1, lambda: l) }
            if e < best.rmse { best = (l, e) }
        }
        return (try fit(x, y, lambda: best.lambda), best.rmse)
    }

    public func predict(_ x: [Double]) -> Double {
        var s = intercept
        for j in weights.indices { s += weights[j] * x[j] }
        return s
    }
}

/// Solves A x = b for symmetric positive definite A (row-major d×d) by Cholesky A = L Lᵀ.
public func choleskySolve(_ a: [Double], _ b: [Double], _ d: Int) throws -> [Double] {
    var l = [Double](repeating: 0, count: d * d)
    for i in 0..<d {
        for j in 0...i {
            var s = a[i * d + j]
            for k in 0..<j { s -= l[i * d + k] * l[j * d + k] }
            if i == j {
                guard s > 0 else { throw PredictorError.notPositiveDefinite }
                l[i * d + i] = s.squareRoot()
            } else {
                l[i * d + j] = s / l[j * d + j]
            }
        }
    }
    var z = b
    for i in 0..<d {
        for k in 0..<i { z[i] -= l[i * d + k] * z[k] }
        z[i] /= l[i * d + i]
    }
    for i in stride(from: d - 1, through: 0, by: -1) {
        for k in (i + 1)..<max(i + 1, d) { z[i] -= l[k * d + i] * z[k] }
        z[i] /= l[i * d + i]
    }
    return z
}

// MARK: - MLP regression

/// One hidden ReLU layer, trained full-batch with Adam on standardised targets; plain loops
/// (the data are a few hundred rows of ~100 features, so a GEMM kernel would not pay off).
public struct MLPRegressor: Regressor {
    public var hidden: Int
    var w1: [Double], b1: [Double], w2: [Double], b2: Double
    var yMean: Double, yStd: Double

    public struct Options: Sendable, Codable, Equatable {
        public var hidden = 32
        public var epochs = 600
        public var learningRate = 0.01
        public var weightDecay = 1e-4
        public init() {}
    }

    public static func fit(_ x: [[Double]], _ y: [Double], options: Options = Options(), seed: UInt64) -> MLPRegressor {
        let n = x.count, d = x[0].count, h = options.hidden
        var rng = SeededRNG(seed: seed)
        let ym = y.reduce(0, +) / Double(n)
        var ys = (y.map { ($0 - ym) * ($0 - ym) }.reduce(0, +) / Double(n)).squareRoot()
        if ys < 1e-12 { ys = 1 }
        let t = y.map { ($0 - ym) / ys }
        // He initialisation for the ReLU layer, small output weights.
        var w1 = (0..<(d * h)).map { _ in Double(rng.nextNormal()) * (2.0 / Double(d)).squareRoot() }
        var b1 = [Double](repeating: 0, count: h)
        var w2 = (0..<h).map { _ in Double(rng.nextNormal()) * (1.0 / Double(h)).squareRoot() }
        var b2 = 0.0
        // Adam state.
        var m1 = [Double](repeating: 0, count: d * h), v1 = m1
        var mb1 = [Double](repeating: 0, count: h), vb1 = mb1
        var m2 = [Double](repeating: 0, count: h), v2 = m2
        var mb2 = 0.0, vb2 = 0.0
        let beta1 = 0.9, beta2 = 0.999, eps = 1e-8, lr = options.learningRate, wd = options.weightDecay
        var hid = [Double](repeating: 0, count: n * h)
        var gw1 = [Double](repeating: 0, count: d * h), gb1 = [Double](repeating: 0, count: h), gw2 = [Double](repeating: 0, count: h)
        var dh = [Double](repeating: 0, count: h)
        for epoch in 1...options.epochs {
            for i in gw1.indices { gw1[i] = 0 }
            for i in 0..<h { gb1[i] = 0; gw2[i] = 0 }
            var gb2 = 0.0
            for r in 0..<n {
                let row = x[r]
                for k in 0..<h { hid[r * h + k] = b1[k] }
                for j in 0..<d where row[j] != 0 {
                    let xj = row[j], base = j * h
                    for k in 0..<h { hid[r * h + k] += xj * w1[base + k] }
                }
                var out = b2
                for k in 0..<h {
                    if hid[r * h + k] < 0 { hid[r * h + k] = 0 }
                    out += hid[r * h + k] * w2[k]
                }
                let g = 2 * (out - t[r]) / Double(n)
                gb2 += g
                for k in 0..<h {
                    gw2[k] += g * hid[r * h + k]
                    dh[k] = hid[r * h + k] > 0 ? g * w2[k] : 0
                    gb1[k] += dh[k]
                }
                for j in 0..<d where row[j] != 0 {
                    let xj = row[j], base = j * h
                    for k in 0..<h { gw1[base + k] += xj * dh[k] }
                }
            }
            let c1 = 1 - pow(beta1, Double(epoch)), c2 = 1 - pow(beta2, Double(epoch))
            @inline(__always) func adam(_ p: inout Double, _ g: Double, _ m: inout Double, _ v: inout Double, decay: Bool) {
                let gg = decay ? g + wd * p : g
                m = beta1 * m + (1 - beta1) * gg
                v = beta2 * v + (1 - beta2) * gg * gg
                p -= lr * (m / c1) / ((v / c2).squareRoot() + eps)
            }
            for i in w1.indices { adam(&w1[i], gw1[i], &m1[i], &v1[i], decay: true) }
            for k in 0..<h {
                adam(&b1[k], gb1[k], &mb1[k], &vb1[k], decay: false)
                adam(&w2[k], gw2[k], &m2[k], &v2[k], decay: true)
            }
            adam(&b2, gb2, &mb2, &vb2, decay: false)
        }
        return MLPRegressor(hidden: h, w1: w1, b1: b1, w2: w2, b2: b2, yMean: ym, yStd: ys)
    }

    public func predict(_ x: [Double]) -> Double {
        var out = b2
        for k in 0..<hidden {
            var s = b1[k]
            for j in x.indices where x[j] != 0 { s += x[j] * w1[j * hidden + k] }
            if s > 0 { out += s * w2[k] }
        }
        return out * yStd + yMean
    }
}

// MARK: - Cross-validation and model choice

/// k folds of shuffled indices (seeded), so CV is reproducible.
public func kFolds(count n: Int, k: Int, using rng: inout SeededRNG) -> [[Int]] {
    var idx = Array(0..<n)
    for i in stride(from: n - 1, to: 0, by: -1) {
        let j = Int(rng.next() % UInt64(i + 1))
        idx.swapAt(i, j)
    }
    let kk = max(2, min(k, n))
    return (0..<kk).map { f in stride(from: f, to: n, by: kk).map { idx[$0] } }
}

/// Root-mean-square error of held-out predictions over the folds.
public func crossValidatedRMSE(_ x: [[Double]], _ y: [Double], folds: [[Int]],
                               fit: ([[Double]], [Double]) throws -> Regressor) rethrows -> Double {
    var se = 0.0, count = 0
    for fold in folds {
        let held = Set(fold)
        let train = x.indices.filter { !held.contains($0) }
        let model = try fit(train.map { x[$0] }, train.map { y[$0] })
        for i in fold {
            let e = model.predict(x[i]) - y[i]
            se += e * e; count += 1
        }
    }
    return (se / Double(max(count, 1))).squareRoot()
}

public enum PredictorKind: String, Codable, Sendable, CaseIterable { case ridge, mlp }

/// A fitted predictor for one objective with how it was chosen.
public struct FittedPredictor: Sendable {
    public var kind: PredictorKind
    public var model: Regressor
    public var encoder: FeatureEncoder
    /// Held-out RMSE of every candidate (k-fold CV on the same folds), keyed "kind/features".
    public var cvRMSE: [String: Double]
    /// CV RMSE of the chosen candidate divided by the targets' standard deviation (0 = perfect,
    /// 1 = no better than predicting the mean).
    public var relativeError: Double
    /// CV RMSE of the chosen candidate, in the target's units.
    public var rmse: Double

    public func predict(_ encoding: [Int]) -> Double { model.predict(encoder.features(encoding)) }
}

public struct PredictorOptions: Sendable, Codable, Equatable {
    public var kinds: [PredictorKind] = [.ridge, .mlp]
    /// Ridge tries every feature kind listed (it is cheap): normalized values fit quantities
    /// linear in the chosen sizes (MACs, params, latency) with few samples, one-hot fits any
    /// additive function once there are enough samples, quadratic fits products of sizes.
    public var ridgeFeatures: [FeatureKind] = [.normalized, .oneHot, .quadratic]
    public var mlpFeatures: FeatureKind = .oneHot
    public var folds = 5
    public var mlp = MLPRegressor.Options()
    /// The MLP must beat ridge's CV error by this factor to be chosen: the simpler model wins
    /// near-ties, which keeps extrapolation tame.
    public var mlpMargin = 0.95
    public init() {}
}

/// Fits every candidate, compares them by k-fold CV on the same folds, refits the best on
/// all data.
public func fitPredictor(space: SearchSpace, encodings: [[Int]], targets: [Double],
                         options: PredictorOptions = PredictorOptions(), seed: UInt64) throws -> FittedPredictor {
    let minimum = max(4, options.folds)
    guard encodings.count >= minimum else { throw PredictorError.tooFewSamples(encodings.count, needed: minimum) }
    var rng = SeededRNG(seed: seed)
    let folds = kFolds(count: encodings.count, k: options.folds, using: &rng)
    let mlpSeed = rng.next()
    var errors: [String: Double] = [:]
    var best: (kind: PredictorKind, model: Regressor, encoder: FeatureEncoder, rmse: Double)?
    if options.kinds.contains(.ridge) {
        for f in options.ridgeFeatures {
            let enc = FeatureEncoder(space: space, kind: f)
            let (r, e) = try RidgeRegressor.fitCV(encodings.map(enc.features), targets, folds: folds)
            errors["ridge/\(f.rawValue)"] = e
            if e < (best?.rmse ?? .infinity) { best = (.ridge, r, enc, e) }
        }
    }
    if options.kinds.contains(.mlp) {
        let enc = FeatureEncoder(space: space, kind: options.mlpFeatures)
        let x = encodings.map(enc.features)
        let e = crossValidatedRMSE(x, targets, folds: folds) { MLPRegressor.fit($0, $1, options: options.mlp, seed: mlpSeed) }
        errors["mlp/\(options.mlpFeatures.rawValue)"] = e
        if best == nil || e < options.mlpMargin * best!.rmse {
            best = (.mlp, MLPRegressor.fit(x, targets, options: options.mlp, seed: mlpSeed), enc, e)
        }
    }
    guard let chosen = best else { throw PredictorError.tooFewSamples(encodings.count, needed: minimum) }
    let mean = targets.reduce(0, +) / Double(targets.count)
    let std = (targets.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(targets.count)).squareRoot()
    return FittedPredictor(kind: chosen.kind, model: chosen.model, encoder: chosen.encoder, cvRMSE: errors,
                           relativeError: std > 0 ? chosen.rmse / std : 0, rmse: chosen.rmse)
}
