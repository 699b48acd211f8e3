//! A labelled drop-down list.

use web_sys::HtmlSelectElement;
use yew::prelude::*;

#[derive(Properties, PartialEq)]
pub struct Props {
    pub id: AttrValue,
    pub label: AttrValue,
    /// Values and their labels.
    pub options: Vec<(String, String)>,
    pub value: AttrValue,
    pub on_change: Callback<String>,
    /// Shown first with an empty value, when nothing is chosen yet.
    #[prop_or_default]
    pub placeholder: Option<AttrValue>,
}

#[function_component(SelectField)]
pub fn select_field(props: &Props) -> Html {
    let on_change = {
        let on_change = props.on_change.clone();
        Callback::from(move |e: Event| {
            on_change.emit(e.target_unchecked_into::<HtmlSelectElement>().value());
        })
    };
    html! {
        <div class="field">
            <label for={props.id.clone()}>{ &props.label }</label>
            <select id={props.id.clone()} onchange={on_change}>
                if let Some(placeholder) = &props.placeholder {
                    <option value="" selected={props.value.is_empty()}>{ placeholder }</option>
                }
                { for props.options.iter().map(|(value, label)| html! {
                    <option value={value.clone()} selected={*value == *props.value}>{ label }</option>
                }) }
            </select>
        </div>
    }
}
