import Foundation
import SculptCore

/// `adapter_config.json` of a PEFT LoRA adapter (the subset Sculpt reads and writes).
///
/// Written with the keys PEFT's `LoraConfig` needs so `PeftModel.from_pretrained` loads it;
/// options that change the math and that Sculpt does not implement (DoRA, fan_in_fan_out,
/// trained biases, per-module rank/alpha patterns, layer filters) are rejected on read rather
/// than silently ignored.
public struct PEFTLoRAConfig: Sendable, Equatable {
    /// `target_modules`: a full-match regex (a JSON string) or a name-suffix list (an array).
    public enum Targets: Sendable, Equatable {
        case regex(String)
        case names([String])
    }

    public var r: Int
    public var loraAlpha: Double
    public var loraDropout: Double
    public var targetModules: Targets
    public var useRSLoRA: Bool
    public var modulesToSave: [String]?
    public var baseModelNameOrPath: String?
    /// PEFT's task type ("SEQ_CLS", "FEATURE_EXTRACTION", …) or nil for a bare base model.
    public var taskType: String?
    public var inferenceMode: Bool

    public static let configFileName = "adapter_config.json"
    public static let weightsFileName = "adapter_model.safetensors"
    /// PeftModel's prefix of every saved key (`base_model.model.<name>`).
    public static let keyPrefix = "base_model.model."

    public init(r: Int, loraAlpha: Double, loraDropout: Double = 0, targetModules: Targets, useRSLoRA: Bool = false,
                modulesToSave: [String]? = nil, baseModelNameOrPath: String? = nil, taskType: String? = nil, inferenceMode: Bool = true) {
        self.r = r
        self.loraAlpha = loraAlpha
        self.loraDropout = loraDropout
        self.targetModules = targetModules
        self.useRSLoRA = useRSLoRA
        self.modulesToSave = modulesToSave
        self.baseModelNameOrPath = baseModelNameOrPath
        self.taskType = taskType
        self.inferenceMode = inferenceMode
    }

    /// The JSON PEFT writes (keys sorted, as `save_pretrained` does).
    public func jsonData() throws -> Data {
        func number(_ d: Double) -> Any { d == d.rounded() && abs(d) < 1e15 ? Int(d) as Any : d as Any }
        var dict: [String: Any] = [
            "peft_type": "LORA",
            "r": r,
            "lora_alpha": number(loraAlpha),
            "lora_dropout": loraDropout,
            "bias": "none",
            "fan_in_fan_out": false,
            "inference_mode": inferenceMode,
            "init_lora_weights": true,
            "use_rslora": useRSLoRA,
            "use_dora": false,
            "rank_pattern": [String: Any](),
            "alpha_pattern": [String: Any](),
            "layers_to_transform": NSNull(),
            "layers_pattern": NSNull(),
            "revision": NSNull(),
            "base_model_name_or_path": baseModelNameOrPath.map { $0 as Any } ?? NSNull(),
            "task_type": taskType.map { $0 as Any } ?? NSNull(),
            "modules_to_save": modulesToSave.map { $0 as Any } ?? NSNull(),
        ]
        switch targetModules {
        case .regex(let p): dict["target_modules"] = p
        case .names(let l): dict["target_modules"] = l
        }
        return try JSONSerialization.data(withJSONObject: dict, options: [.prettyPrinted, .sortedKeys])
    }

    public func write(to url: URL) throws { try AtomicFile.write(try jsonData(), to: url) }

    public static func load(from url: URL) throws -> PEFTLoRAConfig {
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            throw ConfigError(file: url.path, key: nil, message: "cannot read: \(error.localizedDescription)")
        }
        return try parse(data, file: url.path)
    }

    public static func parse(_ data: Data, file: String = configFileName) throws -> PEFTLoRAConfig {
        let json: StrictJSON.Value
        do { json = try data.withUnsafeBytes { try StrictJSON.parse($0) } } catch let e as StrictJSON.ParseError {
            throw ConfigError(file: file, key: nil, message: "not valid JSON: \(e)")
        }
        guard case .object = json else { throw ConfigError(file: file, key: nil, message: "the JSON is \(json.kindDescription), not an object") }
        func fail(_ key: String, _ message: String) -> ConfigError { ConfigError(file: file, key: key, message: message) }
        func present(_ key: String) -> StrictJSON.Value? {
            guard let v = json[key] else { return nil }
            if case .null = v { return nil }
            return v
        }
        func bool(_ key: String, default d: Bool) throws -> Bool {
            guard let v = present(key) else { return d }
            guard case .bool(let b) = v else { throw fail(key, "must be a boolean, got \(v.kindDescription)") }
            return b
        }
        func string(_ key: String) throws -> String? {
            guard let v = present(key) else { return nil }
            guard let s = v.stringValue else { throw fail(key, "must be a string, got \(v.kindDescription)") }
            return s
        }
        func strings(_ key: String) throws -> [String]? {
            guard let v = present(key) else { return nil }
            guard case .array(let items) = v else { throw fail(key, "must be a list of strings, got \(v.kindDescription)") }
            return try items.map { guard let s = $0.stringValue else { throw fail(key, "must hold strings, got \($0.kindDescription)") }; return s }
        }
        func isEmptyOrNull(_ key: String) -> Bool {
            guard let v = present(key) else { return true }
            switch v {
            case .object(let m): return m.isEmpty
            case .array(let a): return a.isEmpty
            default: return false
            }
        }

        guard let type = try string("peft_type") else { throw fail("peft_type", "is missing") }
        guard type == "LORA" else { throw fail("peft_type", "is \"\(type)\"; only LORA adapters are supported") }
        guard let r = present("r")?.intValue, r > 0 else { throw fail("r", "must be a positive integer") }
        let alpha = try present("lora_alpha").map { v -> Double in
            guard let d = v.doubleValue else { throw fail("lora_alpha", "must be a number, got \(v.kindDescription)") }
            return d
        } ?? 8  // LoraConfig's default
        let dropout = try present("lora_dropout").map { v -> Double in
            guard let d = v.doubleValue, d >= 0, d < 1 else { throw fail("lora_dropout", "must be a number in [0, 1)") }
            return d
        } ?? 0
        let targets: Targets
        switch present("target_modules") {
        case .string(let s)?: targets = .regex(s)
        case .array?: targets = .names(try strings("target_modules") ?? [])
        case nil: throw fail("target_modules", "is missing (Sculpt needs explicit targets)")
        case let v?: throw fail("target_modules", "must be a string or a list, got \(v.kindDescription)")
        }
        if let bias = try string("bias"), bias != "none" { throw fail("bias", "is \"\(bias)\"; only \"none\" is supported") }
        for key in ["fan_in_fan_out", "use_dora", "lora_bias"] where try bool(key, default: false) {
            throw fail(key, "is true; not supported")
        }
        for key in ["rank_pattern", "alpha_pattern", "layers_to_transform", "layers_pattern", "exclude_modules"] where !isEmptyOrNull(key) {
            throw fail(key, "is set; not supported")
        }
        return PEFTLoRAConfig(r: r, loraAlpha: alpha, loraDropout: dropout, targetModules: targets,
                              useRSLoRA: try bool("use_rslora", default: false), modulesToSave: try strings("modules_to_save"),
                              baseModelNameOrPath: try string("base_model_name_or_path"), taskType: try string("task_type"),
                              inferenceMode: try bool("inference_mode", default: true))
    }
}
