//! Pictures drawn on the server as SVG (no script): a definition as a graph — activities and
//! data nodes left to right by data flow (input, output, dependsOn), schedules, preconditions and
//! resources in a row below, joined to what refers to them — and instances on a timeline by
//! scheduled period, coloured by status.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use maud::{Markup, html};
use serde_json::Value;

const NODE_WIDTH: i64 = 180;
const NODE_HEIGHT: i64 = 46;
const COLUMN_GAP: i64 = 70;
const ROW_GAP: i64 = 22;
const MARGIN: i64 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Activity,
    DataNode,
    Precondition,
    Schedule,
    Resource,
    Other,
}

impl Kind {
    fn of(type_name: &str) -> Kind {
        match type_name {
            name if name.ends_with("Activity") => Kind::Activity,
            name if name.ends_with("DataNode") => Kind::DataNode,
            "Schedule" => Kind::Schedule,
            "Ec2Resource" | "EmrCluster" => Kind::Resource,
            "Exists"
            | "S3KeyExists"
            | "S3PrefixNotEmpty"
            | "ShellCommandPrecondition"
            | "DynamoDBTableExists"
            | "DynamoDBDataExists" => Kind::Precondition,
            _ => Kind::Other,
        }
    }

    fn class(self) -> &'static str {
        match self {
            Kind::Activity => "activity",
            Kind::DataNode => "datanode",
            Kind::Precondition => "precondition",
            Kind::Schedule => "schedule",
            Kind::Resource => "resource",
            Kind::Other => "other",
        }
    }

    fn in_flow(self) -> bool {
        matches!(self, Kind::Activity | Kind::DataNode)
    }
}

struct Node {
    id: String,
    name: String,
    type_name: String,
    kind: Kind,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum EdgeKind {
    Flow,
    DependsOn,
    Uses,
}

fn refs<'a>(fields: &'a Value, key: &str) -> Vec<&'a str> {
    fields
        .as_array()
        .into_iter()
        .flatten()
        .filter(|entry| entry["key"] == key)
        .filter_map(|entry| entry["refValue"].as_str())
        .collect()
}

fn short(text: &str, length: usize) -> String {
    if text.chars().count() <= length {
        text.to_string()
    } else {
        let mut cut: String = text.chars().take(length.saturating_sub(1)).collect();
        cut.push('…');
        cut
    }
}

/// The definition's components as an SVG graph.
pub fn render(objects: &[Value]) -> Markup {
    let mut nodes: Vec<Node> = Vec::new();
    for object in objects {
        let Some(id) = object["id"].as_str() else { continue };
        let type_name = object["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|entry| entry["key"] == "type")
            .and_then(|entry| entry["stringValue"].as_str())
            .unwrap_or("");
        let kind = Kind::of(type_name);
        if kind == Kind::Other {
            continue;
        }
        nodes.push(Node {
            id: id.to_string(),
            name: object["name"].as_str().unwrap_or(id).to_string(),
            type_name: type_name.to_string(),
            kind,
        });
    }
    let index: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .map(|(at, node)| (node.id.as_str(), at))
        .collect();
    let mut edges: Vec<(usize, usize, EdgeKind)> = Vec::new();
    for object in objects {
        let Some(&at) = object["id"].as_str().and_then(|id| index.get(id)) else {
            continue;
        };
        let fields = &object["fields"];
        for target in refs(fields, "input") {
            if let Some(&from) = index.get(target) {
                edges.push((from, at, EdgeKind::Flow));
            }
        }
        for target in refs(fields, "output") {
            if let Some(&to) = index.get(target) {
                edges.push((at, to, EdgeKind::Flow));
            }
        }
        for target in refs(fields, "dependsOn") {
            if let Some(&from) = index.get(target) {
                edges.push((from, at, EdgeKind::DependsOn));
            }
        }
        for key in ["schedule", "precondition", "runsOn"] {
            for target in refs(fields, key) {
                if let Some(&to) = index.get(target) {
                    edges.push((at, to, EdgeKind::Uses));
                }
            }
        }
    }
    // Columns: the longest flow path to each node (cycles, which validation refuses, are cut
    // by bounding the passes).
    let mut rank = vec![0i64; nodes.len()];
    for _ in 0..nodes.len().min(200) {
        let mut changed = false;
        for (from, to, kind) in &edges {
            if *kind != EdgeKind::Uses
                && nodes[*from].kind.in_flow()
                && nodes[*to].kind.in_flow()
                && rank[*to] < rank[*from] + 1
            {
                rank[*to] = rank[*from] + 1;
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    let mut columns: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    let mut side: Vec<usize> = Vec::new();
    for (at, node) in nodes.iter().enumerate() {
        if node.kind.in_flow() {
            columns.entry(rank[at]).or_default().push(at);
        } else {
            side.push(at);
        }
    }
    // Within a column, by where their predecessors are (one sweep), then by id.
    let mut position: HashMap<usize, (i64, i64)> = HashMap::new();
    let mut tallest = 0;
    for (column, members) in &mut columns {
        let mut keyed: Vec<(f64, String, usize)> = members
            .iter()
            .map(|&at| {
                let above: Vec<i64> = edges
                    .iter()
                    .filter(|(_, to, kind)| *to == at && *kind != EdgeKind::Uses)
                    .filter_map(|(from, _, _)| position.get(from).map(|(_, y)| *y))
                    .collect();
                let key = if above.is_empty() {
                    f64::MAX
                } else {
                    above.iter().sum::<i64>() as f64 / above.len() as f64
                };
                (key, nodes[at].id.clone(), at)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
        for (row, (_, _, at)) in keyed.iter().enumerate() {
            let x = MARGIN + column * (NODE_WIDTH + COLUMN_GAP);
            let y = MARGIN + row as i64 * (NODE_HEIGHT + ROW_GAP);
            position.insert(*at, (x, y));
        }
        tallest = tallest.max(keyed.len() as i64);
        *members = keyed.into_iter().map(|(_, _, at)| at).collect();
    }
    let side_y = MARGIN + tallest * (NODE_HEIGHT + ROW_GAP) + if tallest > 0 { 30 } else { 0 };
    side.sort_by_key(|&at| (nodes[at].kind, nodes[at].id.clone()));
    for (count, at) in side.iter().enumerate() {
        position.insert(*at, (MARGIN + count as i64 * (NODE_WIDTH + 24), side_y));
    }
    let width = position
        .values()
        .map(|(x, _)| x + NODE_WIDTH + MARGIN)
        .max()
        .unwrap_or(200);
    let height = position
        .values()
        .map(|(_, y)| y + NODE_HEIGHT + MARGIN)
        .max()
        .unwrap_or(80);
    let kinds: BTreeSet<&str> = nodes.iter().map(|node| node.kind.class()).collect();
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="graph" role="img" width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } data-kinds=(kinds.into_iter().collect::<Vec<_>>().join(" ")) {
            title { "Pipeline graph" }
            defs {
                marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse" {
                    path d="M 0 0 L 10 5 L 0 10 z" class="arrowhead";
                }
            }
            @for (from, to, kind) in &edges {
                @if let (Some((x1, y1)), Some((x2, y2))) = (position.get(from), position.get(to)) {
                    @let (ax, ay, bx, by) = if *kind == EdgeKind::Uses {
                        (x1 + NODE_WIDTH / 2, y1 + NODE_HEIGHT, x2 + NODE_WIDTH / 2, *y2)
                    } else {
                        (x1 + NODE_WIDTH, y1 + NODE_HEIGHT / 2, *x2, y2 + NODE_HEIGHT / 2)
                    };
                    line class={ "edge " (match kind { EdgeKind::Flow => "flow", EdgeKind::DependsOn => "depends", EdgeKind::Uses => "uses" }) }
                        x1=(ax) y1=(ay) x2=(bx) y2=(by) marker-end="url(#arrow)" {}
                }
            }
            @for (at, node) in nodes.iter().enumerate() {
                @if let Some((x, y)) = position.get(&at) {
                    g class={ "node " (node.kind.class()) } data-id=(node.id) {
                        title { (node.id) " (" (node.type_name) ")" }
                        rect x=(x) y=(y) width=(NODE_WIDTH) height=(NODE_HEIGHT) rx="6" {}
                        text x=(x + 10) y=(y + 19) class="name" { (short(&node.name, 24)) }
                        text x=(x + 10) y=(y + 36) class="type" { (short(&node.type_name, 28)) }
                    }
                }
            }
        }
    }
}

/// Instances by component (rows) and scheduled start (columns), coloured by status.
pub fn timeline(by_component: &BTreeMap<String, Vec<&Value>>) -> Markup {
    let field = |instance: &Value, key: &str| -> String {
        instance["fields"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|entry| entry["key"] == key)
            .and_then(|entry| entry["stringValue"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let times: BTreeSet<String> = by_component
        .values()
        .flatten()
        .map(|instance| field(instance, "@scheduledStartTime"))
        .collect();
    let column: HashMap<&String, i64> = times.iter().enumerate().map(|(at, time)| (time, at as i64)).collect();
    let (label, cell, row_height) = (170, 20, 26);
    // Wide enough for the axis's two dates.
    let width = (label + times.len() as i64 * (cell + 4) + MARGIN).max(label + 340);
    let height = by_component.len() as i64 * row_height + 40;
    html! {
        svg xmlns="http://www.w3.org/2000/svg" class="timeline" role="img" width=(width) height=(height) viewBox={ "0 0 " (width) " " (height) } {
            title { "Instances by scheduled period" }
            @if let (Some(first), Some(last)) = (times.first(), times.last()) {
                text x=(label) y=(height - 8) class="axis" { (first) }
                @if times.len() > 1 { text x=(width - MARGIN) y=(height - 8) class="axis end" { (last) } }
            }
            @for (row, (component, instances)) in by_component.iter().enumerate() {
                @let y = 8 + row as i64 * row_height;
                text x="4" y=(y + 15) class="label" { (short(component, 24)) }
                @for instance in instances {
                    @let start = field(instance, "@scheduledStartTime");
                    @let status = field(instance, "@status");
                    @let x = label + column.get(&start).copied().unwrap_or(0) * (cell + 4);
                    rect class={ "cell " (super::pages::status_class(&status)) } x=(x) y=(y) width=(cell) height=(cell) rx="3" data-id=(instance["id"].as_str().unwrap_or("")) {
                        title { (instance["id"].as_str().unwrap_or("")) ": " (status) " (" (start) ")" }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(id: &str, type_name: &str, refs: &[(&str, &str)]) -> Value {
        let mut fields = vec![json!({ "key": "type", "stringValue": type_name })];
        for (key, target) in refs {
            fields.push(json!({ "key": key, "refValue": target }));
        }
        json!({ "id": id, "name": id, "fields": fields })
    }

    #[test]
    fn data_flows_left_to_right_and_names_are_escaped() {
        let objects = vec![
            object("Default", "Default", &[]),
            object("In", "S3DataNode", &[]),
            object(
                "Copy",
                "CopyActivity",
                &[("input", "In"), ("output", "Out"), ("schedule", "Daily")],
            ),
            object("Out", "S3DataNode", &[]),
            object("Report", "ShellCommandActivity", &[("dependsOn", "Copy")]),
            object("Daily", "Schedule", &[]),
            object("<b>x</b>", "ShellCommandActivity", &[]),
        ];
        let svg = render(&objects).into_string();
        let x_of = |id: &str| -> i64 {
            let at = svg.find(&format!("data-id=\"{id}\"")).expect(id);
            let rest = &svg[at..];
            let x = rest.find("x=\"").expect("x") + 3;
            rest[x..rest[x..].find('"').expect("end") + x].parse().expect("number")
        };
        assert!(x_of("In") < x_of("Copy") && x_of("Copy") < x_of("Out"));
        assert!(x_of("Copy") < x_of("Report"));
        assert!(svg.contains("class=\"edge depends\"") && svg.contains("class=\"edge uses\""));
        assert!(!svg.contains("data-id=\"Default\""), "Default is not drawn");
        assert!(svg.contains("&lt;b&gt;x&lt;/b&gt;") && !svg.contains("<b>"));
    }
}
