import XCTest
import Foundation
import SculptCore
import SculptIO
import SculptTestSupport
@testable import SculptTune

/// A real `sculpt train` process killed with SIGKILL mid-run, then resumed, ends with the
/// same weights as an uninterrupted run. Needs the built executable (skips without it).
final class KillResumeTests: XCTestCase {
    func sculptBinary() throws -> URL {
        for config in ["debug", "release"] {
            let url = SharedData.repoRoot.appendingPathComponent(".build/\(config)/sculpt")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw XCTSkip("skipped: no built sculpt executable under .build (run `swift build` first)")
    }

    func train(_ binary: URL, _ args: [String]) throws -> Process {
        let p = Process()
        p.executableURL = binary
        p.arguments = ["train"] + args
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        return p
    }

    /// Starts a run in `dir`, SIGKILLs it once a checkpoint exists and `afterStep` steps are
    /// logged, and returns the step it had reached.
    func killMidRun(_ binary: URL, _ args: [String], in dir: URL, afterStep: Int) throws -> Int {
        let victim = try train(binary, args + ["--out", dir.path])
        let ckpt = RunDirectory(dir).lastCheckpoint
        let deadline = Date().addingTimeInterval(60)
        while Date() < deadline {
            let steps = MetricsLog.read(RunDirectory(dir).metrics).last?.step ?? 0
            if FileManager.default.fileExists(atPath: ckpt.path), steps >= afterStep { break }
            usleep(2_000)
        }
        kill(victim.processIdentifier, SIGKILL)
        victim.waitUntilExit()
        XCTAssertEqual(victim.terminationReason, .uncaughtSignal, "the run finished before it could be killed")
        return MetricsLog.read(RunDirectory(dir).metrics).last?.step ?? 0
    }

    func testSIGKILLMidEpochThenResumeIsBitIdentical() throws {
        let binary = try sculptBinary()
        let dir = temporaryDirectory()
        let data = try Fixtures.idx(in: dir, count: 2000, side: 12)
        let common = ["--model", "cnn", "--width", "8", "--data", data.path, "--epochs", "2", "--batch-size", "16", "--lr", "0.01",
                      "--seed", "4", "--checkpoint-every", "5", "--threads", "1", "--val-fraction", "0.1", "--log-every", "1"]
        let fullDir = dir.appendingPathComponent("full"), killedDir = dir.appendingPathComponent("killed")
        let full = try train(binary, common + ["--out", fullDir.path])
        full.waitUntilExit()
        XCTAssertEqual(full.terminationStatus, 0)

        // Kill once a checkpoint exists and the run is some steps past it, in the first epoch.
        let killedAt = try killMidRun(binary, common, in: killedDir, afterStep: 17)
        XCTAssertLessThan(killedAt, 113, "killed mid-epoch 1 (113 steps per epoch)")

        try assertResumedEqualsUninterrupted(binary, killed: killedDir, full: fullDir, file: "final/model.safetensors")
    }

    /// Resumes the killed run and compares `file` of both runs byte for byte.
    func assertResumedEqualsUninterrupted(_ binary: URL, killed: URL, full: URL, file: String) throws {
        let resumed = try train(binary, ["--resume", killed.path])
        resumed.waitUntilExit()
        XCTAssertEqual(resumed.terminationStatus, 0)
        let a = try Data(contentsOf: full.appendingPathComponent(file)), b = try Data(contentsOf: killed.appendingPathComponent(file))
        XCTAssertEqual(a, b, "resumed \(file) differs from the uninterrupted run's")
    }

    /// The same for a decoder's chat SFT (LoRA with dropout, so the adapters' generators are
    /// part of what must resume): a SIGKILLed `sculpt train` resumed ends with the same adapter.
    func testDecoderSFTKilledThenResumedIsBitIdentical() throws {
        let binary = try sculptBinary()
        let dir = temporaryDirectory()
        let model = try TinyDecoder.write(to: dir.appendingPathComponent("tiny"))
        let data = try TinyDecoder.chatFile(dir.appendingPathComponent("chat.jsonl"), count: 2000)
        let common = ["--model", model.path, "--data", data.path, "--method", "lora", "--lora-dropout", "0.1", "--epochs", "2",
                      "--batch-size", "4", "--lr", "0.003", "--seed", "2", "--checkpoint-every", "5", "--threads", "1",
                      "--val-fraction", "0", "--log-every", "1", "--group-by-length"]
        let fullDir = dir.appendingPathComponent("full"), killedDir = dir.appendingPathComponent("killed")
        let full = try train(binary, common + ["--out", fullDir.path])
        full.waitUntilExit()
        XCTAssertEqual(full.terminationStatus, 0)

        XCTAssertLessThan(try killMidRun(binary, common, in: killedDir, afterStep: 12), 1000, "killed before the end (1000 steps)")

        try assertResumedEqualsUninterrupted(binary, killed: killedDir, full: fullDir, file: "final/adapter_model.safetensors")
    }
}
