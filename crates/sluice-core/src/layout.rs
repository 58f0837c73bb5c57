//! Where an attempt's files go: the path segments runners write logs under (AWS's layout below
//! `pipelineLogUri`: pipeline / component / instance / attempt), shared by the runner that
//! writes them and the server that shows them.

/// Path-safe form of an id (instance and attempt ids hold `@`, `:` and `=`): one path segment,
/// never `.` or `..`.
pub fn path_segment(id: &str) -> String {
    let segment: String = id
        .chars()
        .map(|character| {
            if character.is_ascii_alphanumeric() || "-_.@=".contains(character) {
                character
            } else {
                '_'
            }
        })
        .collect();
    if segment.chars().all(|character| character == '.') {
        "_".repeat(segment.len().max(1))
    } else {
        segment
    }
}

/// `<pipeline>/<component>/<instance>/<attempt>`, each a path segment.
pub fn attempt_log_folder(pipeline_id: &str, component: &str, instance: &str, attempt_id: &str) -> String {
    format!(
        "{}/{}/{}/{}",
        path_segment(pipeline_id),
        path_segment(component),
        path_segment(instance),
        path_segment(attempt_id)
    )
}
