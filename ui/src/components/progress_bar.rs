//! A labelled progress bar for a running job.

use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub id: AttrValue,
    /// What is in progress, for screen readers.
    pub label: AttrValue,
    /// From 0 to 1; `None` while the job has not reported how far it is.
    pub fraction: Option<f64>,
    /// Shown under the bar: the stage, bytes done of the total.
    #[prop_or_default]
    pub words: AttrValue,
}

#[function_component(ProgressBar)]
pub fn progress_bar(props: &Props) -> Html {
    let percent = props.fraction.map(|f| (f.clamp(0.0, 1.0) * 100.0).round());
    // A <progress> element, not a styled <div>: the content security policy allows no
    // inline styles, and this one comes with its role and values for screen readers.
    html! {
        <div class="progress" id={props.id.clone()}>
            <progress class="progress-track" max="100" aria-label={props.label.clone()}
                value={percent.map(|p| p.to_string())} />
            <p class="progress-words muted">
                { percent.map(|p| format!("{p}% · ")).unwrap_or_default() }{ &props.words }
            </p>
        </div>
    }
}
