import Foundation
import GRDB

public enum StoreError: Error, CustomStringConvertible, Equatable {
    case notSQLite(String)
    case foreign(String, reason: String)
    case corrupt(String, reason: String)
    case cannotOpen(String, reason: String)
    case newerFormat(String, version: Int)
    case searchMismatch(id: String, reason: String)
    case unknownSearch(String, known: [String])
    case ambiguousSearch([String])
    case noSearches(String)

    public var description: String {
        switch self {
        case .notSQLite(let p): return "\(p) is not an SQLite file (corrupt or another kind of file)"
        case .foreign(let p, let r): return "\(p) is an SQLite file but not a Sculpt evaluation store (\(r))"
        case .corrupt(let p, let r): return "\(p) is a damaged SQLite file: \(r)"
        case .cannotOpen(let p, let r): return "cannot open the evaluation store \(p): \(r)"
        case .newerFormat(let p, let v): return "\(p) is a Sculpt store of format version \(v), newer than this build reads (\(EvaluationStore.formatVersion))"
        case .searchMismatch(let id, let r): return "search \"\(id)\" already exists in the store with \(r); use another --search-id"
        case .unknownSearch(let id, let known): return "no search \"\(id)\" in the store (searches: \(known.isEmpty ? "none" : known.joined(separator: ", ")))"
        case .ambiguousSearch(let ids): return "the store holds several searches (\(ids.joined(separator: ", "))): choose one with --search-id"
        case .noSearches(let p): return "\(p) holds no searches yet"
        }
    }
}

/// One real evaluation of a sub-network.
public struct StoredEvaluation: Sendable, Equatable {
    public var id: Int64
    public var encoding: [Int]
    public var subnetJSON: String
    /// Measured values by name.
    public var values: [String: Double]
    /// What the predictor said before the measurement, when the candidate came from one.
    public var predicted: [String: Double]
    public var seconds: Double
    /// The search that first evaluated it (others may reuse it).
    public var searchId: String
    public var createdAt: Double
}

public struct SearchRecord: Sendable, Equatable {
    public var id: String
    public var spaceHash: String
    public var spaceJSON: String
    public var configJSON: String
    public var referenceJSON: String?
}

/// SQLite file (WAL) holding every evaluated sub-network, unique by (encoding, search-space
/// hash), shared by any number of searches. Each evaluation is committed on its own as soon
/// as it is measured, so a crash or SIGKILL loses at most the one in flight.
public final class EvaluationStore: Sendable {
    public static let formatVersion = 1
    /// PRAGMA application_id: "SCLP". A second marker beside the sculpt_meta table, so other
    /// tools (`file`, sqlite3) can tell what the file is.
    public static let applicationID: Int32 = 0x5343_4C50
    static let formatName = "sculpt-evaluation-store"

    public let path: String
    let pool: DatabasePool

    public init(path: String) throws {
        self.path = path
        try EvaluationStore.checkHeader(path)
        var config = Configuration()
        config.busyMode = .timeout(10)
        config.foreignKeysEnabled = true
        // WAL with synchronous=NORMAL: a commit survives a killed process (what resume needs);
        // only a power loss can drop the last commits. FULL would fsync every evaluation.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            pool = try DatabasePool(path: path, configuration: config)
        } catch let e as DatabaseError {
            throw EvaluationStore.classify(e, path)
        }
        do {
            try pool.write { db in try EvaluationStore.prepareSchema(db, path: path) }
        } catch let e as DatabaseError {
            throw EvaluationStore.classify(e, path)
        }
    }

    /// A non-empty file must start with SQLite's magic header; anything else is refused before
    /// SQLite gets a chance to treat it as something it can overwrite.
    static func checkHeader(_ path: String) throws {
        guard let h = FileHandle(forReadingAtPath: path) else { return }
        defer { try? h.close() }
        let head = (try? h.read(upToCount: 16)) ?? Data()
        if head.isEmpty { return }
        guard head == Data("SQLite format 3\0".utf8) else { throw StoreError.notSQLite(path) }
    }

    static func classify(_ e: DatabaseError, _ path: String) -> StoreError {
        switch e.resultCode {
        case .SQLITE_NOTADB: return .notSQLite(path)
        case .SQLITE_CORRUPT: return .corrupt(path, reason: e.message ?? "\(e.resultCode)")
        default: return .cannotOpen(path, reason: e.message ?? "\(e.resultCode)")
        }
    }

    /// Creates the schema in an empty database, or checks the markers of an existing one.
    static func prepareSchema(_ db: Database, path: String) throws {
        let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        let appID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        if tables.isEmpty {
            guard appID == 0 || appID == applicationID else {
                throw StoreError.foreign(path, reason: String(format: "application_id 0x%08x", appID))
            }
            try db.execute(sql: "PRAGMA application_id = \(applicationID)")
            try db.execute(sql: """
                CREATE TABLE sculpt_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
                INSERT INTO sculpt_meta VALUES ('format', '\(formatName)'), ('version', '\(formatVersion)');
                CREATE TABLE searches (
                    id TEXT PRIMARY KEY, space_hash TEXT NOT NULL, space_json TEXT NOT NULL,
                    config_json TEXT NOT NULL, reference_json TEXT, created_at REAL NOT NULL);
                CREATE TABLE evaluations (
                    id INTEGER PRIMARY KEY, space_hash TEXT NOT NULL, encoding TEXT NOT NULL,
                    subnet_json TEXT NOT NULL, seconds REAL NOT NULL, search_id TEXT NOT NULL,
                    created_at REAL NOT NULL, UNIQUE (encoding, space_hash));
                CREATE TABLE evaluation_values (
                    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id), name TEXT NOT NULL,
                    value REAL NOT NULL, measured INTEGER NOT NULL,
                    PRIMARY KEY (evaluation_id, name, measured));
                CREATE TABLE search_members (
                    search_id TEXT NOT NULL REFERENCES searches(id),
                    evaluation_id INTEGER NOT NULL REFERENCES evaluations(id),
                    seq INTEGER NOT NULL, PRIMARY KEY (search_id, evaluation_id));
                """)
            return
        }
        guard tables.contains("sculpt_meta") else {
            throw StoreError.foreign(path, reason: "no sculpt_meta table; tables: \(tables.sorted().joined(separator: ", "))")
        }
        let meta = Dictionary(try Row.fetchAll(db, sql: "SELECT key, value FROM sculpt_meta").map { ($0["key"] as String, $0["value"] as String) },
                              uniquingKeysWith: { a, _ in a })
        guard meta["format"] == formatName, appID == applicationID else {
            throw StoreError.foreign(path, reason: "format marker \(meta["format"] ?? "missing"), application_id \(String(format: "0x%08x", appID))")
        }
        let version = Int(meta["version"] ?? "") ?? 0
        guard version <= formatVersion else { throw StoreError.newerFormat(path, version: version) }
    }

    // MARK: searches

    /// Registers a search, or checks that a search of that id has the same space and config
    /// (resuming one with other settings would silently mix two experiments).
    public func registerSearch(id: String, space: SearchSpace, configJSON: String) throws {
        try pool.write { db in
            if let row = try Row.fetchOne(db, sql: "SELECT space_hash, config_json FROM searches WHERE id = ?", arguments: [id]) {
                let hash: String = row["space_hash"], cfg: String = row["config_json"]
                guard hash == space.hash else { throw StoreError.searchMismatch(id: id, reason: "another search space") }
                guard cfg == configJSON else { throw StoreError.searchMismatch(id: id, reason: "other settings (\(cfg))") }
                return
            }
            try db.execute(sql: "INSERT INTO searches (id, space_hash, space_json, config_json, created_at) VALUES (?, ?, ?, ?, ?)",
                           arguments: [id, space.hash, space.canonicalJSON, configJSON, Date().timeIntervalSince1970])
        }
    }

    public func setReference(searchId: String, json: String) throws {
        try pool.write { db in
            try db.execute(sql: "UPDATE searches SET reference_json = ? WHERE id = ?", arguments: [json, searchId])
        }
    }

    public func searches() throws -> [SearchRecord] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM searches ORDER BY created_at, id").map {
                SearchRecord(id: $0["id"], spaceHash: $0["space_hash"], spaceJSON: $0["space_json"],
                             configJSON: $0["config_json"], referenceJSON: $0["reference_json"])
            }
        }
    }

    // MARK: evaluations

    static func load(_ db: Database, _ row: Row) throws -> StoredEvaluation {
        let id: Int64 = row["id"]
        var values: [String: Double] = [:], predicted: [String: Double] = [:]
        for v in try Row.fetchAll(db, sql: "SELECT name, value, measured FROM evaluation_values WHERE evaluation_id = ?", arguments: [id]) {
            if (v["measured"] as Int) != 0 { values[v["name"]] = v["value"] } else { predicted[v["name"]] = v["value"] }
        }
        return StoredEvaluation(id: id, encoding: parseEncodingText(row["encoding"]) ?? [], subnetJSON: row["subnet_json"],
                                values: values, predicted: predicted, seconds: row["seconds"], searchId: row["search_id"],
                                createdAt: row["created_at"])
    }

    /// The stored evaluation of `encoding` in the space with `spaceHash`, if any.
    public func lookup(_ encoding: [Int], spaceHash: String) throws -> StoredEvaluation? {
        try pool.read { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM evaluations WHERE encoding = ? AND space_hash = ?",
                                             arguments: [encodingText(encoding), spaceHash]) else { return nil }
            return try EvaluationStore.load(db, row)
        }
    }

    /// Records a finished measurement (and the search's claim on it) in one transaction.
    /// If another process stored the same encoding meanwhile, its row is kept and returned.
    @discardableResult
    public func record(_ encoding: [Int], space: SearchSpace, values: [String: Double], predicted: [String: Double] = [:],
                       seconds: Double, searchId: String) throws -> StoredEvaluation {
        try pool.write { db in
            let text = encodingText(encoding), hash = space.hash
            try db.execute(sql: """
                INSERT OR IGNORE INTO evaluations (space_hash, encoding, subnet_json, seconds, search_id, created_at)
                VALUES (?, ?, ?, ?, ?, ?)
                """, arguments: [hash, text, space.subnetJSON(encoding), seconds, searchId, Date().timeIntervalSince1970])
            let row = try Row.fetchOne(db, sql: "SELECT * FROM evaluations WHERE encoding = ? AND space_hash = ?", arguments: [text, hash])!
            let id: Int64 = row["id"]
            for (k, v) in values.sorted(by: { $0.key < $1.key }) {
                try db.execute(sql: "INSERT OR IGNORE INTO evaluation_values VALUES (?, ?, ?, 1)", arguments: [id, k, v])
            }
            for (k, v) in predicted.sorted(by: { $0.key < $1.key }) {
                try db.execute(sql: "INSERT OR IGNORE INTO evaluation_values VALUES (?, ?, ?, 0)", arguments: [id, k, v])
            }
            try EvaluationStore.addMember(db, searchId: searchId, evaluationId: id)
            return try EvaluationStore.load(db, row)
        }
    }

    /// Adds measured values that an earlier search did not ask for to an existing evaluation.
    public func addValues(evaluationId: Int64, values: [String: Double]) throws {
        try pool.write { db in
            for (k, v) in values.sorted(by: { $0.key < $1.key }) {
                try db.execute(sql: "INSERT OR IGNORE INTO evaluation_values VALUES (?, ?, ?, 1)", arguments: [evaluationId, k, v])
            }
        }
    }

    /// Claims an evaluation made by another search for `searchId`.
    public func addMember(searchId: String, evaluationId: Int64) throws {
        try pool.write { db in try EvaluationStore.addMember(db, searchId: searchId, evaluationId: evaluationId) }
    }

    static func addMember(_ db: Database, searchId: String, evaluationId: Int64) throws {
        let next = (try Int.fetchOne(db, sql: "SELECT COALESCE(MAX(seq), -1) + 1 FROM search_members WHERE search_id = ?", arguments: [searchId])) ?? 0
        try db.execute(sql: "INSERT OR IGNORE INTO search_members VALUES (?, ?, ?)", arguments: [searchId, evaluationId, next])
    }

    /// A search's evaluations in the order it made or claimed them.
    public func members(searchId: String) throws -> [StoredEvaluation] {
        try pool.read { db in
            try Row.fetchAll(db, sql: """
                SELECT e.* FROM evaluations e JOIN search_members m ON m.evaluation_id = e.id
                WHERE m.search_id = ? ORDER BY m.seq
                """, arguments: [searchId]).map { try EvaluationStore.load(db, $0) }
        }
    }

    public func evaluationCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM evaluations") ?? 0 }
    }
}
