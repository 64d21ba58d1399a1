import ArgumentParser
import Foundation
import SculptCore
import SculptSubnet

struct Subnets: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "The search space of an elastic or gated run and its named sub-networks with MACs and parameters.")
    @Argument(help: "A run directory trained with --method elastic or gates.") var runDir: String
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let l = try RunSubnets.list(URL(fileURLWithPath: runDir))
        if json { print(jsonLine(l)); return }
        print("\(l.kind) super-network (\(l.training))")
        print(table(["dimension", "choices"], l.dimensions.sorted { $0.key < $1.key }.map { [$0.key, $0.value] }))
        print("")
        print(table(["name", "MACs (\(l.macsUnit))", "fraction", "params", "sub-network"],
                    l.subnets.map { [$0.name, "\($0.macs)", String(format: "%.3f", $0.macsFraction), "\($0.params)", $0.subnet] }))
    }
}

struct Extract: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cut a sub-network out of a run as a dense, smaller model directory, checked against the super-network.")
    @Argument(help: "A run directory trained with --method elastic or gates.") var runDir: String
    @Option(help: "min, max, gated, a named sub-network, a JSON file or JSON text.") var subnet: String
    @Option(help: "The model directory to write.") var out: String
    @Flag(help: "BERT: write removed heads and FFN channels as zeroed full-size weights (a standard HF config).") var hfCompatible = false
    @Option(help: "Threads (0: all cores).") var threads: Int = 0
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let r = try withThreads(threads > 0 ? threads : ThreadPool.machineThreadCount) {
            try RunSubnets.extract(run: URL(fileURLWithPath: runDir), subnet: subnet, out: URL(fileURLWithPath: out), hfCompatible: hfCompatible)
        }
        if json { print(jsonLine(r)); return }
        print("extracted \(r.subnet) to \(r.directory) (\(r.macs) MACs, \(r.params) parameters)")
        print(String(format: "check: max |extracted − super-network| = %.3g on %d examples (limit 1e-4)", r.maxAbsDifference, r.checkedExamples))
    }
}
