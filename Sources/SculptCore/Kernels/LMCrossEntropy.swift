import Foundation

/// Next-token cross-entropy through an LM head, computed over the vocabulary in chunks of
/// rows: hidden [R, H] · weightᵀ (weight [V, H]) gives logits that exist only `chunkRows` × V
/// at a time, in the forward pass and again (recomputed) in the backward pass, so a batch's
/// [tokens × vocabulary] logits are never held whole.
public enum LMCrossEntropy {
    /// Rows per chunk: about 32 MB of logits for a 49k vocabulary.
    public static let defaultChunkRows = 160

    /// The summed −log p(label) of the counted rows (labels ≠ `ignoreIndex`) and their count.
    public static func forward(hidden: Tensor, weight: Tensor, labels: [Int32], ignoreIndex: Int32, chunkRows: Int) -> (sum: Double, counted: Int) {
        let (rows, h, vocab) = dims(hidden, weight, labels)
        var total = 0.0, counted = 0
        let chunk = max(1, chunkRows)
        let logits = Tensor(uninitializedShape: [min(chunk, max(rows, 1)), vocab])
        let logProbs = Tensor(uninitializedShape: logits.shape)
        let pool = ExecutionContext.pool
        var start = 0
        while start < rows {
            let m = min(chunk, rows - start)
            if labels[start..<(start + m)].allSatisfy({ $0 == ignoreIndex }) { start += m; continue }
            sgemm(transA: false, transB: true, m: m, n: vocab, k: h, alpha: 1, a: hidden.storage.pointer + start * h, lda: h,
                  b: weight.storage.pointer, ldb: h, beta: 0, c: logits.storage.pointer, ldc: vocab, pool: pool)
            softmaxRows(logits.storage.pointer, logProbs.storage.pointer, rows: m, n: vocab, log: true, pool: pool)
            let lp = logProbs.storage.pointer
            for r in 0..<m {
                let label = labels[start + r]
                if label == ignoreIndex { continue }
                precondition(label >= 0 && Int(label) < vocab, "lmCrossEntropy: label \(label) outside 0..<\(vocab)")
                total -= Double(lp[r * vocab + Int(label)])
                counted += 1
            }
            start += m
        }
        return (total, counted)
    }

    /// Gradients of `scale` × Σ −log p(label) with respect to the hidden states and the head
    /// weight (either may be skipped).
    public static func backward(hidden: Tensor, weight: Tensor, labels: [Int32], ignoreIndex: Int32, chunkRows: Int, scale: Float,
                                wantHidden: Bool, wantWeight: Bool) -> (hidden: Tensor?, weight: Tensor?) {
        let (rows, h, vocab) = dims(hidden, weight, labels)
        let dHidden = wantHidden ? Tensor.zeros(hidden.shape) : nil
        let dWeight = wantWeight ? Tensor.zeros(weight.shape) : nil
        let chunk = max(1, chunkRows)
        let probs = Tensor(uninitializedShape: [min(chunk, max(rows, 1)), vocab])
        let pool = ExecutionContext.pool
        var start = 0
        while start < rows {
            let m = min(chunk, rows - start)
            if labels[start..<(start + m)].allSatisfy({ $0 == ignoreIndex }) { start += m; continue }
            let p = probs.storage.pointer
            sgemm(transA: false, transB: true, m: m, n: vocab, k: h, alpha: 1, a: hidden.storage.pointer + start * h, lda: h,
                  b: weight.storage.pointer, ldb: h, beta: 0, c: p, ldc: vocab, pool: pool)
            softmaxRows(p, p, rows: m, n: vocab, log: false, pool: pool)
            // d logits = scale · (softmax − onehot) on counted rows, 0 on ignored ones.
            for r in 0..<m {
                let row = p + r * vocab
                let label = labels[start + r]
                if label == ignoreIndex { row.update(repeating: 0, count: vocab); continue }
                scaleRow(row, vocab, scale)
                row[Int(label)] -= scale
            }
            backpropagate(logitGradients: p, rows: m, start: start, hidden: hidden, weight: weight, dHidden: dHidden, dWeight: dWeight, pool: pool)
            start += m
        }
        return (dHidden, dWeight)
    }

    /// Rows `start..<start + rows` of d logits ([rows, vocab] at `logitGradients`) through the
    /// head: d hidden of those rows = dL·W, d W += dLᵀ·hidden.
    static func backpropagate(logitGradients p: UnsafeMutablePointer<Float>, rows m: Int, start: Int, hidden: Tensor, weight: Tensor,
                              dHidden: Tensor?, dWeight: Tensor?, pool: ThreadPool) {
        let h = weight.shape[1], vocab = weight.shape[0]
        if let dHidden {
            sgemm(transA: false, transB: false, m: m, n: h, k: vocab, alpha: 1, a: p, lda: vocab, b: weight.storage.pointer, ldb: h,
                  beta: 0, c: dHidden.storage.pointer + start * h, ldc: h, pool: pool)
        }
        if let dWeight {
            sgemm(transA: true, transB: false, m: vocab, n: h, k: m, alpha: 1, a: p, lda: vocab, b: hidden.storage.pointer + start * h, ldb: h,
                  beta: 1, c: dWeight.storage.pointer, ldc: h, pool: pool)
        }
    }

    private static func dims(_ hidden: Tensor, _ weight: Tensor, _ labels: [Int32]) -> (Int, Int, Int) {
        precondition(weight.rank == 2 && hidden.shape.last == weight.shape[1], "lmCrossEntropy: hidden \(hidden.shape) and head weight \(weight.shape) do not match")
        let h = weight.shape[1]
        let rows = hidden.count / max(h, 1)
        precondition(labels.count == rows, "lmCrossEntropy: \(labels.count) labels for \(rows) rows")
        return (rows, h, weight.shape[0])
    }

    private static func scaleRow(_ x: UnsafeMutablePointer<Float>, _ n: Int, _ s: Float) {
        var i = 0
        let sv = SIMD16<Float>(repeating: s)
        while i + 16 <= n {
            let v = UnsafeRawPointer(x + i).loadUnaligned(as: SIMD16<Float>.self) * sv
            UnsafeMutableRawPointer(x + i).storeBytes(of: v, as: SIMD16<Float>.self)
            i += 16
        }
        while i < n { x[i] *= s; i += 1 }
    }
}

/// Logit distillation through two LM heads, in chunks of rows as `LMCrossEntropy`: the
/// student's logits hidden [R, H] · weightᵀ and the teacher's teacherHidden [R, Ht] ·
/// teacherWeightᵀ (both [R, V]) exist only `chunkRows` × V at a time. The loss of a row is
/// T² · KL(softmax(t/T) ‖ softmax(s/T)) (Hinton; PyTorch's `kl_div(..., log_target=True)`);
/// rows with `counted[r] == false` count for nothing.
public enum LMDistillation {
    /// Σ over counted rows of the row loss, and the number of counted rows.
    public static func forward(hidden: Tensor, weight: Tensor, teacherHidden: Tensor, teacherWeight: Tensor, counted: [Bool],
                               temperature: Float, chunkRows: Int) -> (sum: Double, counted: Int) {
        var total = 0.0, n = 0
        chunks(hidden, weight, teacherHidden, teacherWeight, counted, temperature, chunkRows, studentLog: true) { start, m, sLog, tProb, tLog, vocab in
            for r in 0..<m where counted[start + r] {
                let s = sLog + r * vocab, p = tProb + r * vocab, t = tLog! + r * vocab
                var row = 0.0
                for j in 0..<vocab { row += Double(p[j] * (t[j] - s[j])) }
                total += row * Double(temperature * temperature)
                n += 1
            }
        }
        return (total, n)
    }

    /// Gradients of `scale` × Σ row loss with respect to the student's hidden states and head
    /// weight: T · (softmax(s/T) − softmax(t/T)) per logit.
    public static func backward(hidden: Tensor, weight: Tensor, teacherHidden: Tensor, teacherWeight: Tensor, counted: [Bool],
                                temperature: Float, chunkRows: Int, scale: Float,
                                wantHidden: Bool, wantWeight: Bool) -> (hidden: Tensor?, weight: Tensor?) {
        let dHidden = wantHidden ? Tensor.zeros(hidden.shape) : nil
        let dWeight = wantWeight ? Tensor.zeros(weight.shape) : nil
        let pool = ExecutionContext.pool
        let factor = scale * temperature
        chunks(hidden, weight, teacherHidden, teacherWeight, counted, temperature, chunkRows, studentLog: false) { start, m, sProb, tProb, _, vocab in
            for r in 0..<m {
                let s = sProb + r * vocab, t = tProb + r * vocab
                if !counted[start + r] { s.update(repeating: 0, count: vocab); continue }
                for j in 0..<vocab { s[j] = factor * (s[j] - t[j]) }
            }
            LMCrossEntropy.backpropagate(logitGradients: sProb, rows: m, start: start, hidden: hidden, weight: weight, dHidden: dHidden, dWeight: dWeight, pool: pool)
        }
        return (dHidden, dWeight)
    }

    /// Runs `body(start, rows, student, teacherProbabilities, teacherLogProbabilities, vocab)`
    /// for each chunk with a counted row, on softmax rows of logits / T ([rows, vocab],
    /// writable): the student's as log-probabilities (`studentLog`) or probabilities, the
    /// teacher's as probabilities and, with `studentLog`, log-probabilities too.
    private static func chunks(_ hidden: Tensor, _ weight: Tensor, _ teacherHidden: Tensor, _ teacherWeight: Tensor, _ counted: [Bool],
                               _ temperature: Float, _ chunkRows: Int, studentLog: Bool,
                               _ body: (Int, Int, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>?, Int) -> Void) {
        precondition(weight.rank == 2 && teacherWeight.rank == 2 && hidden.shape.last == weight.shape[1] && teacherHidden.shape.last == teacherWeight.shape[1],
                     "lmDistillation: hidden \(hidden.shape) / head \(weight.shape) and teacher \(teacherHidden.shape) / \(teacherWeight.shape) do not match")
        let h = weight.shape[1], ht = teacherWeight.shape[1], vocab = weight.shape[0]
        precondition(teacherWeight.shape[0] == vocab, "lmDistillation: the student's vocabulary \(vocab) and the teacher's \(teacherWeight.shape[0]) differ")
        let rows = hidden.count / max(h, 1)
        precondition(teacherHidden.count / max(ht, 1) == rows && counted.count == rows, "lmDistillation: \(rows) student rows, \(teacherHidden.count / max(ht, 1)) teacher rows, \(counted.count) flags")
        let chunk = max(1, chunkRows)
        // Logits go to `scratch` (softmax is not computed in place), the softmax rows beside it.
        let shape = [min(chunk, max(rows, 1)), vocab]
        let scratch = Tensor(uninitializedShape: shape), student = Tensor(uninitializedShape: shape), tProb = Tensor(uninitializedShape: shape)
        let tLog = studentLog ? Tensor(uninitializedShape: shape) : nil
        let pool = ExecutionContext.pool
        let inverseT = 1 / temperature
        var start = 0
        while start < rows {
            let m = min(chunk, rows - start)
            if !counted[start..<(start + m)].contains(true) { start += m; continue }
            sgemm(transA: false, transB: true, m: m, n: vocab, k: h, alpha: inverseT, a: hidden.storage.pointer + start * h, lda: h,
                  b: weight.storage.pointer, ldb: h, beta: 0, c: scratch.storage.pointer, ldc: vocab, pool: pool)
            softmaxRows(scratch.storage.pointer, student.storage.pointer, rows: m, n: vocab, log: studentLog, pool: pool)
            sgemm(transA: false, transB: true, m: m, n: vocab, k: ht, alpha: inverseT, a: teacherHidden.storage.pointer + start * ht, lda: ht,
                  b: teacherWeight.storage.pointer, ldb: ht, beta: 0, c: scratch.storage.pointer, ldc: vocab, pool: pool)
            softmaxRows(scratch.storage.pointer, tProb.storage.pointer, rows: m, n: vocab, log: false, pool: pool)
            if let tLog { softmaxRows(scratch.storage.pointer, tLog.storage.pointer, rows: m, n: vocab, log: true, pool: pool) }
            body(start, m, student.storage.pointer, tProb.storage.pointer, tLog?.storage.pointer, vocab)
            start += m
        }
    }
}
