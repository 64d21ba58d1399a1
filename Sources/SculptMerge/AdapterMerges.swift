import Foundation
import SculptCore
import SculptIO

/// Combining PEFT LoRA adapters trained on one base.
///
/// Each adapter i contributes ΔWᵢ = sᵢ·wᵢ·Bᵢ·Aᵢ per module (sᵢ = lora_alpha/r, or /√r with
/// rsLoRA; wᵢ the config weight).
/// - `lora_concat` is exact: A = [A₁; A₂; …] (rank Σrᵢ), B = [s₁w₁B₁, s₂w₂B₂, …], written with
///   lora_alpha = r so the new scaling is 1. A module only some adapters target gets zero
///   blocks from the others, so every module has the same rank (PEFT's single `r`).
/// - `lora_svd` writes the best rank-`rank` approximation of Σ sᵢwᵢBᵢAᵢ (truncated SVD of
///   the concatenated factors' r×r core; exact when the sum has rank ≤ `rank`).
/// Inputs are adapter directories (`adapter_config.json` + `adapter_model.safetensors`) or
/// run directories whose `final/` holds them.
enum LoRAMerge {
    struct Adapter {
        let config: PEFTLoRAConfig
        let file: SafeTensorsFile
        let path: String
        var scaling: Double { config.useRSLoRA ? config.loraAlpha / Double(config.r).squareRoot() : config.loraAlpha / Double(config.r) }
    }

    static func resolve(_ p: String, role: String) throws -> URL {
        let u = URL(fileURLWithPath: p)
        let fm = FileManager.default
        if fm.fileExists(atPath: u.appendingPathComponent(PEFTLoRAConfig.configFileName).path) { return u }
        let f = u.appendingPathComponent("final")
        if fm.fileExists(atPath: f.appendingPathComponent(PEFTLoRAConfig.configFileName).path) { return f }
        throw MergeError("\(role) \(p): no \(PEFTLoRAConfig.configFileName) in it or in its final/")
    }

    static func run(_ c: MergeConfig, into dir: URL) throws -> MergeReport {
        let adapters = try c.models.enumerated().map { i, m -> Adapter in
            let d = try resolve(m.model, role: "models[\(i)]")
            let cfg = try PEFTLoRAConfig.load(from: d.appendingPathComponent(PEFTLoRAConfig.configFileName))
            if let mts = cfg.modulesToSave, !mts.isEmpty {
                throw MergeError("models[\(i)] \(m.model): modules_to_save (\(mts.joined(separator: ", "))) cannot be combined; merge those modules separately")
            }
            return Adapter(config: cfg, file: try SafeTensorsFile(path: d.appendingPathComponent(PEFTLoRAConfig.weightsFileName).path), path: m.model)
        }
        // Module name → (in, out), from every adapter's lora_A / lora_B pairs.
        let prefix = PEFTLoRAConfig.keyPrefix, suffixA = ".lora_A.weight", suffixB = ".lora_B.weight"
        var dims: [String: (inF: Int, outF: Int)] = [:]
        for a in adapters {
            for name in a.file.names {
                guard name.hasPrefix(prefix), name.hasSuffix(suffixA) else {
                    if name.hasSuffix(suffixB) { continue }
                    throw MergeError("\(a.path): unexpected tensor \(name) in a LoRA adapter")
                }
                let module = String(name.dropFirst(prefix.count).dropLast(suffixA.count))
                let ai = try a.file.info(name)
                guard let bi = try? a.file.info(prefix + module + suffixB) else { throw MergeError("\(a.path): \(module) has lora_A but no lora_B") }
                guard ai.shape.count == 2, bi.shape.count == 2, ai.shape[0] == a.config.r, bi.shape[1] == a.config.r else {
                    throw MergeError("\(a.path): \(module): lora_A \(ai.shape) / lora_B \(bi.shape) do not match r = \(a.config.r)")
                }
                let d = (ai.shape[1], bi.shape[0])
                if let e = dims[module], e != d {
                    throw MergeError("\(a.path): \(module) is \(d.1)×\(d.0) here and \(e.outF)×\(e.inF) in another adapter")
                }
                dims[module] = d
            }
        }
        let modules = dims.keys.sorted()
        let total = adapters.reduce(0) { $0 + $1.config.r }
        let rank = c.method == .loraConcat ? total : c.rank!
        var writer = SafeTensorsWriter()
        for module in modules {
            let (inF, outF) = dims[module]!
            // Concatenated factors: A_cat (total×in), B_cat (out×total) with scaling folded in.
            var aCat = [Double](repeating: 0, count: total * inF), bCat = [Double](repeating: 0, count: outF * total)
            var offset = 0
            for (i, ad) in adapters.enumerated() {
                let r = ad.config.r
                defer { offset += r }
                let ka = prefix + module + suffixA, kb = prefix + module + suffixB
                guard ad.file.contains(ka) else { continue }
                let av = try ad.file.floats(ka), bv = try ad.file.floats(kb)
                let s = ad.scaling * c.models[i].weight
                for row in 0..<r { for col in 0..<inF { aCat[(offset + row) * inF + col] = Double(av[row * inF + col]) } }
                for row in 0..<outF { for col in 0..<r { bCat[row * total + offset + col] = Double(bv[row * r + col]) * s } }
            }
            var outA: [Double], outB: [Double]
            if c.method == .loraConcat {
                (outA, outB) = (aCat, bCat)
            } else {
                let t = SVD.truncateProduct(b: bCat, a: aCat, rows: outF, inner: total, cols: inF, rank: rank)
                (outA, outB) = (t.a, t.b)
            }
            try writer.add(name: prefix + module + suffixA, floats: outA.map(Float.init), shape: [rank, inF])
            try writer.add(name: prefix + module + suffixB, floats: outB.map(Float.init), shape: [outF, rank])
        }
        let first = adapters[0].config
        var targets = first.targetModules
        if adapters.contains(where: { $0.config.targetModules != first.targetModules }) { targets = .names(modules) }
        let cfg = PEFTLoRAConfig(r: rank, loraAlpha: Double(rank), loraDropout: first.loraDropout, targetModules: targets,
                                 useRSLoRA: false, modulesToSave: nil, baseModelNameOrPath: first.baseModelNameOrPath,
                                 taskType: first.taskType, inferenceMode: true)
        try writer.write(to: dir.appendingPathComponent(PEFTLoRAConfig.weightsFileName))
        try cfg.write(to: dir.appendingPathComponent(PEFTLoRAConfig.configFileName))
        var report = MergeReport(method: c.method.rawValue, output: "")
        report.mergedTensors = 2 * modules.count
        return report
    }
}

/// Composing sparse fine-tuning diffs (`SparseDiff`, LT-SFT) on a base: models with weight 1
/// are applied, models with weight −1 reverted, each set composed by addition first. Inputs
/// are diff files, or directories holding `sparse_diff.safetensors` (or in their `final/`).
enum SparseDiffMerge {
    static let fileName = "sparse_diff.safetensors"

    static func resolve(_ p: String, role: String) throws -> URL {
        let u = URL(fileURLWithPath: p)
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: u.path, isDirectory: &isDir) else { throw MergeError("\(role) \(p): no such file or directory") }
        if !isDir.boolValue { return u }
        for c in [u.appendingPathComponent(fileName), u.appendingPathComponent("final").appendingPathComponent(fileName)]
            where fm.fileExists(atPath: c.path) { return c }
        throw MergeError("\(role) \(p): no \(fileName) in it or in its final/")
    }

    static func run(_ c: MergeConfig, into dir: URL) throws -> MergeReport {
        let baseDir = try ModelDirectory.resolve(c.baseModel!, role: "base_model")
        let base = try SafeTensorsFile(path: baseDir.appendingPathComponent("model.safetensors").path)
        var apply: [SparseDiff] = [], revert: [SparseDiff] = []
        for (i, m) in c.models.enumerated() {
            let diff = try SparseDiff.load(from: try resolve(m.model, role: "models[\(i)]"))
            for (name, part) in diff.parts {
                guard let info = try? base.info(name) else { throw MergeError("models[\(i)] \(m.model): diff names \(name), which the base lacks") }
                guard info.shape == part.shape else {
                    throw MergeError("models[\(i)] \(m.model): \(name) has shape \(part.shape) in the diff, \(info.shape) in the base")
                }
            }
            switch m.weight {
            case 1: apply.append(diff)
            case -1: revert.append(diff)
            default: throw MergeError("models[\(i)] \(m.model): weight must be 1 (apply) or -1 (revert) for sparse_diff, got \(m.weight)")
            }
        }
        let added = try SparseDiff.compose(apply), removed = try SparseDiff.compose(revert)
        var writer = SafeTensorsWriter()
        var report = MergeReport(method: c.method.rawValue, output: "")
        let dtype = c.dtype.safetensors
        for name in base.names {
            let info = try base.info(name)
            guard Merge.isFloat(info.dtype), added.parts[name] != nil || removed.parts[name] != nil else {
                try writer.add(name: name, dtype: info.dtype, shape: info.shape) { write in
                    try base.withRawBytes(name) { try write($0) }
                    base.evict(name)
                }
                report.copiedTensors += 1
                continue
            }
            try writer.add(name: name, dtype: dtype, shape: info.shape) { write in
                var t = try base.tensor(name)
                base.evict(name)
                if let p = added.parts[name] { try SparseDiff.patch(&t, p, name: name, sign: 1) }
                if let p = removed.parts[name] { try SparseDiff.patch(&t, p, name: name, sign: -1) }
                try t.withUnsafePointer { try Merge.emit($0, t.count, as: dtype, write) }
            }
            report.mergedTensors += 1
        }
        try writer.write(to: dir.appendingPathComponent("model.safetensors"), metadata: ["format": "pt", "sculpt_merge_method": "sparse_diff"])
        try Merge.copySideFiles(reference: baseDir, models: [], into: dir)
        return report
    }
}
