//! Django's own formats and checks: signed values (`django.core.signing`),
//! cookies as Django and Channels parse them, and sessions as
//! `django.contrib.auth.get_user` decides them.

pub mod cookie;
pub mod session;
pub mod signing;
