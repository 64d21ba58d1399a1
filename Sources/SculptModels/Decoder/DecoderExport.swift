import Foundation
import SculptCore
import SculptIO

/// Writes a decoder as a Hugging Face directory that `AutoModelForCausalLM.from_pretrained`
/// and `AutoTokenizer.from_pretrained` load: model.safetensors (float32, or `dtype`), config.json,
/// generation_config.json, tokenizer.json, tokenizer_config.json and chat_template.jinja.
public enum DecoderExport {
    /// The files written, in order. The directory is built beside `out` and moved into place;
    /// an existing `out` is refused unless `replace`.
    @discardableResult
    public static func writeHFDirectory(_ bundle: DecoderBundle, to out: URL, replace: Bool, dtype: SafeTensorsDType = .f32) throws -> [String] {
        var written: [String] = []
        try StagedDirectory.write(out, existing: replace ? .replace : .refuse) { dir in
            try bundle.model.save(to: dir, dtype: dtype)
            written += ["model.safetensors", "config.json", "generation_config.json"]
            written += try writeTokenizer(bundle, to: dir)
        }
        return written
    }

    /// Tokenizer files: copied from a source directory, or made from the tokenizer (GGUF).
    public static func writeTokenizer(_ bundle: DecoderBundle, to dir: URL) throws -> [String] {
        let fm = FileManager.default
        var written: [String] = []
        if bundle.source.format == .directory {
            for name in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja", "vocab.json", "merges.txt"] {
                let src = bundle.source.url.appendingPathComponent(name)
                guard fm.fileExists(atPath: src.path) else { continue }
                try AtomicFile.write(try Data(contentsOf: src), to: dir.appendingPathComponent(name))
                written.append(name)
            }
            return written
        }
        let f = try GGUFTokenizerFields(GGUFFile(path: bundle.source.path))
        let files = try BPETokenizerFiles.fromGGUF(
            tokens: f.tokens, merges: f.merges, tokenTypes: f.tokenTypes, preTokenizer: f.preTokenizer,
            bosTokenId: f.bos, eosTokenId: f.eos, padTokenId: f.pad, unknownTokenId: f.unknown,
            addBOS: f.addBOS, source: bundle.source.path)
        try AtomicFile.write(files.tokenizerJSON, to: dir.appendingPathComponent("tokenizer.json"))
        try AtomicFile.write(files.tokenizerConfig, to: dir.appendingPathComponent("tokenizer_config.json"))
        written += ["tokenizer.json", "tokenizer_config.json"]
        if let template = f.chatTemplate {
            try AtomicFile.write(Data(template.utf8), to: dir.appendingPathComponent("chat_template.jinja"))
            written.append("chat_template.jinja")
        }
        return written
    }
}
