import Foundation
import SculptCore
import SculptNN
import SculptIO

/// Fixed 0/1 masks over a model's weights (unstructured pruning, iterative magnitude pruning):
/// a masked-out entry is exactly +0, gets no gradient and is never moved by AdamW (its update
/// and decoupled weight decay skip it through `AdamW.updateMasks`). `--masks FILE` trains a
/// `full` run under such masks; the file maps parameter names to tensors of their shape.
public enum WeightMasks {
    /// Reads masks and checks them against `model`: every name a parameter, shapes equal,
    /// every entry 0 or 1. Errors name the file and the tensor.
    public static func read(_ url: URL, for model: any Module) throws -> [String: Tensor] {
        let file: SafeTensorsFile
        do { file = try SafeTensorsFile(url: url) } catch { throw TuneError("--masks \(url.path): cannot read (\(error))") }
        let params = Dictionary(uniqueKeysWithValues: model.namedParameters().map { ($0.name, $0.parameter) })
        var out: [String: Tensor] = [:]
        for name in file.names {
            guard let p = params[name] else { throw TuneError("--masks \(url.path): \"\(name)\" is not a parameter of the model") }
            let m: Tensor
            do { m = try file.tensor(name) } catch { throw TuneError("--masks \(url.path): tensor \"\(name)\": \(error)") }
            guard m.shape == p.value.shape else {
                throw TuneError("--masks \(url.path): tensor \"\(name)\" has shape \(m.shape), the parameter \(p.value.shape)")
            }
            if let bad = (0..<m.count).first(where: { m[flat: $0] != 0 && m[flat: $0] != 1 }) {
                throw TuneError("--masks \(url.path): tensor \"\(name)\" entry \(bad) is \(m[flat: bad]), not 0 or 1")
            }
            out[name] = m
        }
        guard !out.isEmpty else { throw TuneError("--masks \(url.path): holds no tensors") }
        return out
    }

    /// Sets the masked-out entries to +0 (not −0, so saved files show plain zeros).
    public static func apply(_ masks: [String: Tensor], to model: any Module) {
        for (name, p) in model.namedParameters() {
            guard let m = masks[name] else { continue }
            p.value.withUnsafeMutablePointer { w in
                m.withUnsafePointer { mp in for i in 0..<m.count where mp[i] == 0 { w[i] = 0 } }
            }
        }
    }

    /// Zeroes the gradient of masked-out entries, so clipping sees only what trains.
    public static func maskGradients(_ masks: [String: Tensor], of model: any Module) {
        for (n, p) in model.namedParameters() {
            guard let m = masks[n] else { continue }
            p.grad?.withUnsafeMutablePointer { gp in m.withUnsafePointer { mp in for i in 0..<m.count { gp[i] *= mp[i] } } }
        }
    }

    /// Fraction of exactly-zero entries over the parameters named in `names`.
    public static func zeroFraction(_ model: any Module, names: Set<String>) -> Double {
        var zeros = 0, total = 0
        for (n, p) in model.namedParameters() where names.contains(n) {
            total += p.value.count
            p.value.withUnsafePointer { w in for i in 0..<p.value.count where w[i] == 0 { zeros += 1 } }
        }
        return Double(zeros) / Double(max(total, 1))
    }
}
