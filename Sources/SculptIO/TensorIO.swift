import Foundation
import SculptCore

extension SafeTensorsFile {
    /// Loads a tensor as Float32 (converting F16/BF16), straight into a new tensor's buffer.
    public func tensor(_ name: String) throws -> Tensor {
        let info = try info(name)
        var t = Tensor(uninitializedShape: info.shape)
        try t.withUnsafeMutablePointer { p in
            try copyFloats(name, into: UnsafeMutableBufferPointer(start: p, count: info.elementCount))
        }
        return t
    }
}

/// Writing named tensors as a safetensors file (atomically, sorted keys, `format: pt`).
public enum SafeTensorsSaving {
    public static func write(_ tensors: [String: Tensor], to url: URL, dtype: SafeTensorsDType = .f32, metadata: [String: String] = ["format": "pt"]) throws {
        var writer = SafeTensorsWriter()
        for (name, t) in tensors {
            try writer.add(name: name, floats: t.scalars, shape: t.shape, as: dtype)
        }
        try writer.write(to: url, metadata: metadata)
    }
}
