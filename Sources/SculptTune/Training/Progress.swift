import Foundation

/// Progress on standard error: a redrawn one-line bar on a terminal, plain lines otherwise
/// (logs and pipes should not fill with carriage returns).
public final class ProgressDisplay {
    let isTerminal: Bool
    let plainEvery: TimeInterval
    var lastPlain = Date.distantPast
    var barShown = false

    public init(plainEvery: TimeInterval = 10) {
        isTerminal = isatty(STDERR_FILENO) == 1
        self.plainEvery = plainEvery
    }

    /// Step/total, loss, examples/s and ETA.
    public func update(step: Int, total: Int, epoch: Int, loss: Double, examplesPerSecond: Double, eta: TimeInterval) {
        let stats = String(format: "loss %.4f  %.0f ex/s  ETA %@", loss, examplesPerSecond, Self.duration(eta))
        if isTerminal {
            let width = 24
            let filled = total > 0 ? min(width, width * step / total) : 0
            let bar = String(repeating: "█", count: filled) + String(repeating: "·", count: width - filled)
            write("\r\u{1B}[2K[\(bar)] \(step)/\(total) epoch \(epoch + 1)  \(stats)")
            barShown = true
        } else if Date().timeIntervalSince(lastPlain) >= plainEvery || step == total {
            lastPlain = Date()
            write("step \(step)/\(total) epoch \(epoch + 1)  \(stats)\n")
        }
    }

    /// A message on its own line (evaluations, checkpoints), not overwritten by the bar.
    public func line(_ message: String) {
        if barShown { write("\r\u{1B}[2K"); barShown = false }
        write(message + "\n")
    }

    public func finish() { if barShown { write("\n"); barShown = false } }

    func write(_ s: String) { FileHandle.standardError.write(Data(s.utf8)) }

    static func duration(_ t: TimeInterval) -> String {
        guard t.isFinite, t >= 0 else { return "?" }
        let s = Int(t.rounded())
        return s >= 3600 ? String(format: "%dh%02dm", s / 3600, s % 3600 / 60) : String(format: "%d:%02d", s / 60, s % 60)
    }
}
