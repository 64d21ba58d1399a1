import Foundation
import SculptNN

/// Which weights train. `full` and `bitfit` are complete here; `lora`, `sparse` and `s2ft`
/// are the hook points for the methods branch (LoRA adapters, SparseDiff, s2ft permutation).
public enum FineTuneMethod: Sendable, Equatable {
    case full
    case bitfit
    case lora(rank: Int, alpha: Double, dropout: Double, targets: [String])
    case sparse(density: Double)
    case s2ft(density: Double)
    /// Weight-sharing sub-network training (all weights train; the sampling strategy is SculptSubnet's).
    case elastic
    /// Learned unit gates toward a MACs/parameter target (all weights and the gates train).
    case gates

    public init(config c: TrainConfig) throws {
        switch c.method {
        case "full": self = .full
        case "bitfit": self = .bitfit
        case "lora":
            guard c.loraRank > 0 else { throw TuneError("--lora-rank must be positive, got \(c.loraRank)") }
            self = .lora(rank: c.loraRank, alpha: c.loraAlpha, dropout: c.loraDropout,
                         targets: c.loraTargets.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
        case "sparse", "s2ft":
            guard c.density > 0 && c.density <= 1 else { throw TuneError("--density must be in (0, 1], got \(c.density)") }
            self = c.method == "sparse" ? .sparse(density: c.density) : .s2ft(density: c.density)
        case "elastic": self = .elastic
        case "gates": self = .gates
        default:
            throw TuneError("--method must be one of full, lora, bitfit, sparse, s2ft, elastic, gates; got \"\(c.method)\"")
        }
    }

    public var name: String {
        switch self {
        case .full: return "full"
        case .bitfit: return "bitfit"
        case .lora: return "lora"
        case .sparse: return "sparse"
        case .s2ft: return "s2ft"
        case .elastic: return "elastic"
        case .gates: return "gates"
        }
    }

    /// Marks which parameters train. BitFit keeps biases and the new head.
    public func apply(to model: any Classifier) throws {
        switch self {
        case .full, .elastic, .gates:
            model.setTrainable(true)
        case .bitfit:
            model.setTrainable(false)
            model.setTrainable(true) { $0.hasSuffix(".bias") || $0.hasPrefix("classifier.") }
        case .lora, .sparse, .s2ft:
            throw TuneError("--method \(name) is not available yet in this build (it arrives with the fine-tuning methods)")
        }
    }
}
