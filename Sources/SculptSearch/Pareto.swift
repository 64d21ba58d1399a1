import Foundation

/// Pareto machinery on objective vectors in minimisation form (callers negate max objectives).
public enum Pareto {
    /// `a` dominates `b`: no worse in every objective and better in at least one.
    @inline(__always)
    public static func dominates(_ a: [Double], _ b: [Double]) -> Bool {
        var better = false
        for i in a.indices {
            if a[i] > b[i] { return false }
            if a[i] < b[i] { better = true }
        }
        return better
    }

    /// Constraint-domination (Deb 2000): feasible beats infeasible, the smaller total violation
    /// wins among infeasible points, and plain domination decides among feasible ones.
    @inline(__always)
    public static func constraintDominates(_ a: [Double], _ va: Double, _ b: [Double], _ vb: Double) -> Bool {
        if va <= 0 && vb > 0 { return true }
        if va > 0 && vb <= 0 { return false }
        if va > 0 && vb > 0 { return va < vb }
        return dominates(a, b)
    }

    /// Fast non-dominated sorting (Deb et al. 2002): fronts of indices, best first. Within a
    /// front indices keep ascending order, so results do not depend on hashing.
    public static func nonDominatedSort(_ points: [[Double]], violations: [Double]? = nil) -> [[Int]] {
        let n = points.count
        guard n > 0 else { return [] }
        let v = violations ?? [Double](repeating: 0, count: n)
        var dominatedBy = [[Int]](repeating: [], count: n)  // S_p: points p dominates
        var count = [Int](repeating: 0, count: n)          // n_p: how many dominate p
        var fronts: [[Int]] = [[]]
        for p in 0..<n {
            for q in (p + 1)..<max(p + 1, n) {
                if constraintDominates(points[p], v[p], points[q], v[q]) {
                    dominatedBy[p].append(q); count[q] += 1
                } else if constraintDominates(points[q], v[q], points[p], v[p]) {
                    dominatedBy[q].append(p); count[p] += 1
                }
            }
        }
        for p in 0..<n where count[p] == 0 { fronts[0].append(p) }
        var i = 0
        while !fronts[i].isEmpty {
            var next: [Int] = []
            for p in fronts[i] {
                for q in dominatedBy[p] {
                    count[q] -= 1
                    if count[q] == 0 { next.append(q) }
                }
            }
            next.sort()
            i += 1
            fronts.append(next)
        }
        fronts.removeLast()
        return fronts
    }

    /// Rank (0 = first front) of every point.
    public static func ranks(_ fronts: [[Int]], count: Int) -> [Int] {
        var r = [Int](repeating: 0, count: count)
        for (k, f) in fronts.enumerated() { for i in f { r[i] = k } }
        return r
    }

    /// Crowding distance of the points of one front (Deb et al. 2002): boundary points get
    /// infinity, interior ones the sum over objectives of the normalised gap between neighbours.
    public static func crowdingDistance(_ front: [[Double]]) -> [Double] {
        let n = front.count
        guard n > 0 else { return [] }
        var d = [Double](repeating: 0, count: n)
        if n <= 2 { return [Double](repeating: .infinity, count: n) }
        for m in front[0].indices {
            // Stable tie-break by index so equal values give reproducible distances.
            let order = (0..<n).sorted { front[$0][m] != front[$1][m] ? front[$0][m] < front[$1][m] : $0 < $1 }
            let lo = front[order[0]][m], hi = front[order[n - 1]][m]
            d[order[0]] = .infinity
            d[order[n - 1]] = .infinity
            guard hi > lo else { continue }
            for k in 1..<(n - 1) where d[order[k]].isFinite {
                d[order[k]] += (front[order[k + 1]][m] - front[order[k - 1]][m]) / (hi - lo)
            }
        }
        return d
    }

    /// Indices of the non-dominated points among feasible ones (first front).
    public static func frontIndices(_ points: [[Double]], violations: [Double]? = nil) -> [Int] {
        nonDominatedSort(points, violations: violations).first ?? []
    }
}

public enum HypervolumeError: Error, CustomStringConvertible, Equatable {
    case dimensionMismatch(point: Int, reference: Int)
    public var description: String {
        switch self {
        case .dimensionMismatch(let p, let r): return "hypervolume: a point has \(p) objectives, the reference point \(r)"
        }
    }
}

/// Exact hypervolume (minimisation) dominated by `points` and bounded by `reference`.
/// Points not strictly better than the reference in every objective add nothing.
/// Two objectives: one sweep after sorting, O(n log n). Three or more: slicing along the last
/// objective (HSO), each slice an (m-1)-objective problem; exact, O(n² log n) for three.
public enum Hypervolume {
    public static func compute(_ points: [[Double]], reference: [Double]) throws -> Double {
        for p in points where p.count != reference.count {
            throw HypervolumeError.dimensionMismatch(point: p.count, reference: reference.count)
        }
        let inside = points.filter { p in zip(p, reference).allSatisfy { $0 < $1 } }
        return volume(inside, reference)
    }

    static func volume(_ pts: [[Double]], _ ref: [Double]) -> Double {
        guard !pts.isEmpty else { return 0 }
        switch ref.count {
        case 1: return ref[0] - pts.map { $0[0] }.min()!
        case 2: return sweep2D(pts, ref)
        default:
            let m = ref.count - 1
            let sorted = pts.sorted { $0[m] < $1[m] }
            var total = 0.0
            var slice: [[Double]] = []
            for (i, p) in sorted.enumerated() {
                slice.append(Array(p[0..<m]))
                let top = i + 1 < sorted.count ? sorted[i + 1][m] : ref[m]
                let depth = top - p[m]
                if depth > 0 { total += volume(slice, Array(ref[0..<m])) * depth }
            }
            return total
        }
    }

    static func sweep2D(_ pts: [[Double]], _ ref: [Double]) -> Double {
        let sorted = pts.sorted { $0[0] != $1[0] ? $0[0] < $1[0] : $0[1] < $1[1] }
        var hv = 0.0
        var lastY = ref[1]
        for p in sorted where p[1] < lastY {
            hv += (ref[0] - p[0]) * (lastY - p[1])
            lastY = p[1]
        }
        return hv
    }
}
