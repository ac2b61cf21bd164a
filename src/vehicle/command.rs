//! The MAVLink command protocol: COMMAND_LONG / COMMAND_INT answered by COMMAND_ACK,
//! retransmitted on timeout (https://mavlink.io/en/services/command.html).

use mavlink::dialects::common::{
    MavCmd, MavFrame, MavMessage, MavResult, COMMAND_INT_DATA, COMMAND_LONG_DATA,
};
use tokio::time::Instant;

use super::mode::Px4Mode;
use super::Vehicle;

/// A command to send: its id and seven parameters (x/y as degrees for COMMAND_INT).
#[derive(Clone, Debug, PartialEq)]
pub struct CommandSpec {
    pub command: MavCmd,
    pub params: [f32; 7],
    /// Target component (1 = autopilot, 100 = camera).
    pub target_component: u8,
}

impl CommandSpec {
    pub fn new(command: MavCmd, params: [f32; 7]) -> Self {
        Self {
            command,
            params,
            target_component: 1,
        }
    }
}

/// A positive acknowledgement.
#[derive(Clone, Debug, PartialEq)]
pub struct CommandAck {
    /// How many times the command was sent before it was acknowledged.
    pub attempts: u32,
    /// Progress reports (MAV_RESULT_IN_PROGRESS) seen before the final ack, in percent.
    pub progress: Vec<u8>,
}

#[derive(Debug, thiserror::Error, PartialEq)]
pub enum CommandError {
    #[error("{command:?} denied{}", reason_suffix(.reason))]
    Denied {
        command: MavCmd,
        reason: Option<String>,
    },
    #[error("{command:?} is not supported by the vehicle")]
    Unsupported { command: MavCmd },
    #[error("{command:?} failed{}", reason_suffix(.reason))]
    Failed {
        command: MavCmd,
        reason: Option<String>,
    },
    #[error("{command:?} temporarily rejected{}; try again", reason_suffix(.reason))]
    TemporarilyRejected {
        command: MavCmd,
        reason: Option<String>,
    },
    #[error("{command:?} was cancelled by the vehicle")]
    Cancelled { command: MavCmd },
    #[error("{command:?}: no COMMAND_ACK after {attempts} attempts")]
    Timeout { command: MavCmd, attempts: u32 },
    #[error("{command:?}: vehicle answered {result:?}")]
    Other { command: MavCmd, result: MavResult },
    #[error("the vehicle does not pass its own arming checks in {mode} after {waited:?}{}", reason_suffix(.reason))]
    NotArmable {
        mode: Px4Mode,
        waited: std::time::Duration,
        reason: Option<String>,
    },
}

fn reason_suffix(r: &Option<String>) -> String {
    match r {
        Some(r) => format!(": {r}"),
        None => String::new(),
    }
}

impl Vehicle {
    /// Sends COMMAND_LONG until acknowledged; `confirmation` counts retransmissions.
    pub async fn command_long(&self, spec: CommandSpec) -> Result<CommandAck, CommandError> {
        self.run_command(spec, false).await
    }

    /// Sends COMMAND_INT (params 5 and 6 are degrees, sent as degE7) until acknowledged.
    pub async fn command_int(&self, spec: CommandSpec) -> Result<CommandAck, CommandError> {
        self.run_command(spec, true).await
    }

    async fn run_command(&self, spec: CommandSpec, int: bool) -> Result<CommandAck, CommandError> {
        let cfg = self.cfg().clone();
        let own_sys = self.own_ids().0;
        let mut txn = self.txn().await;
        let mut texts: Vec<String> = Vec::new();
        let mut progress = Vec::new();
        let cmd = spec.command;
        let p = spec.params;
        for attempt in 0..=cfg.command_retries {
            let msg = if int {
                MavMessage::COMMAND_INT(COMMAND_INT_DATA {
                    param1: p[0],
                    param2: p[1],
                    param3: p[2],
                    param4: p[3],
                    x: (f64::from(p[4]) * 1e7).round() as i32,
                    y: (f64::from(p[5]) * 1e7).round() as i32,
                    z: p[6],
                    command: cmd,
                    target_system: self.sysid(),
                    target_component: spec.target_component,
                    frame: MavFrame::MAV_FRAME_GLOBAL,
                    current: 0,
                    autocontinue: 0,
                })
            } else {
                MavMessage::COMMAND_LONG(COMMAND_LONG_DATA {
                    param1: p[0],
                    param2: p[1],
                    param3: p[2],
                    param4: p[3],
                    param5: p[4],
                    param6: p[5],
                    param7: p[6],
                    command: cmd,
                    target_system: self.sysid(),
                    target_component: spec.target_component,
                    confirmation: attempt.min(255) as u8,
                })
            };
            txn.send(msg);
            let mut deadline = Instant::now() + cfg.command_timeout;
            while let Some(inb) = txn.recv_until(deadline).await {
                match &inb.msg {
                    MavMessage::STATUSTEXT(s) => {
                        texts.push(s.text.to_str().unwrap_or("").to_string());
                    }
                    MavMessage::COMMAND_ACK(a)
                        if a.command == cmd
                            && (a.target_system == 0 || a.target_system == own_sys) =>
                    {
                        let reason = || texts.last().cloned();
                        return match a.result {
                            MavResult::MAV_RESULT_ACCEPTED => Ok(CommandAck {
                                attempts: attempt + 1,
                                progress,
                            }),
                            MavResult::MAV_RESULT_IN_PROGRESS => {
                                // The vehicle is working on it: wait, do not resend
                                // (as MAVSDK does; the final ack follows).
                                progress.push(a.progress);
                                deadline = Instant::now() + cfg.command_timeout * 3;
                                continue;
                            }
                            MavResult::MAV_RESULT_DENIED => Err(CommandError::Denied {
                                command: cmd,
                                reason: reason(),
                            }),
                            MavResult::MAV_RESULT_UNSUPPORTED => {
                                Err(CommandError::Unsupported { command: cmd })
                            }
                            MavResult::MAV_RESULT_FAILED => Err(CommandError::Failed {
                                command: cmd,
                                reason: reason(),
                            }),
                            MavResult::MAV_RESULT_TEMPORARILY_REJECTED => {
                                Err(CommandError::TemporarilyRejected {
                                    command: cmd,
                                    reason: reason(),
                                })
                            }
                            MavResult::MAV_RESULT_CANCELLED => {
                                Err(CommandError::Cancelled { command: cmd })
                            }
                            other => Err(CommandError::Other {
                                command: cmd,
                                result: other,
                            }),
                        };
                    }
                    _ => {}
                }
            }
            if !progress.is_empty() {
                // Went silent after IN_PROGRESS: resending would restart the action.
                break;
            }
        }
        Err(CommandError::Timeout {
            command: cmd,
            attempts: cfg.command_retries + 1,
        })
    }

    /// Arms (MAV_CMD_COMPONENT_ARM_DISARM, param1 = 1). A refusal carries PX4's STATUSTEXT reason.
    pub async fn arm(&self) -> Result<CommandAck, CommandError> {
        self.command_long(CommandSpec::new(
            MavCmd::MAV_CMD_COMPONENT_ARM_DISARM,
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ))
        .await
    }

    pub async fn disarm(&self) -> Result<CommandAck, CommandError> {
        self.command_long(CommandSpec::new(
            MavCmd::MAV_CMD_COMPONENT_ARM_DISARM,
            [0.0; 7],
        ))
        .await
    }

    /// MAV_CMD_DO_SET_MODE with MAV_MODE_FLAG_CUSTOM_MODE_ENABLED and PX4's main/sub mode.
    pub async fn set_mode(&self, mode: Px4Mode) -> Result<CommandAck, CommandError> {
        let (main, sub) = mode.main_sub();
        self.command_long(CommandSpec::new(
            MavCmd::MAV_CMD_DO_SET_MODE,
            [1.0, f32::from(main), f32::from(sub), 0.0, 0.0, 0.0, 0.0],
        ))
        .await
    }

    /// MAV_CMD_NAV_TAKEOFF to `alt_amsl` metres (NaN: PX4's MIS_TAKEOFF_ALT).
    pub async fn takeoff(&self, alt_amsl: f32) -> Result<CommandAck, CommandError> {
        let nan = f32::NAN;
        self.command_long(CommandSpec::new(
            MavCmd::MAV_CMD_NAV_TAKEOFF,
            [-1.0, 0.0, 0.0, nan, nan, nan, alt_amsl],
        ))
        .await
    }

    /// Switches to `mode`, retrying a refusal for up to `wait` with a backoff of 100 ms
    /// doubling to 1 s. PX4 checks an uploaded mission's feasibility asynchronously and
    /// refuses AUTO.MISSION until it has passed, so the first refusal right after an upload
    /// is not final; the last refusal is returned with PX4's STATUSTEXT reason.
    pub async fn set_mode_when_ready(
        &self,
        mode: Px4Mode,
        wait: std::time::Duration,
    ) -> Result<CommandAck, CommandError> {
        let until = Instant::now() + wait;
        let mut backoff = std::time::Duration::from_millis(100);
        loop {
            match self.set_mode(mode).await {
                Err(
                    e @ (CommandError::Denied { .. } | CommandError::TemporarilyRejected { .. }),
                ) if Instant::now() + backoff < until => {
                    tracing::debug!("vehicle {}: {e}; trying again in {backoff:?}", self.sysid());
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(std::time::Duration::from_secs(1));
                }
                r => return r,
            }
        }
    }

    /// Starts the uploaded mission as QGroundControl does on PX4
    /// (PX4FirmwarePlugin::startMission): AUTO.MISSION first, then arm, so nothing is
    /// armed while PX4 decides. PX4 checks a new mission asynchronously and may take the
    /// mode before it has, so the arm waits (at most `wait`) for two fresh SYS_STATUS
    /// reports in mission mode whose PREARM_CHECK bit says arming would pass (MAVSDK's
    /// `is_armable`). A vehicle that does not report the bit is armed at once.
    pub async fn start_mission_armed(
        &self,
        wait: std::time::Duration,
    ) -> Result<CommandAck, CommandError> {
        let mode = Px4Mode::AutoMission;
        self.set_mode_when_ready(mode, wait).await?;
        self.wait_for(wait, |t| t.mode == mode).await;
        let seen = self.telemetry().sensors.map_or(0, |s| s.reports);
        if self.telemetry().armable().is_some()
            && !self
                .wait_for(wait, |t| {
                    t.mode == mode
                        && t.armable() == Some(true)
                        && t.sensors.is_some_and(|s| s.reports >= seen + 2)
                })
                .await
        {
            return Err(CommandError::NotArmable {
                mode,
                waited: wait,
                reason: self
                    .telemetry()
                    .statustext
                    .back()
                    .map(|(_, t)| t.trim().to_string()),
            });
        }
        self.arm().await
    }

    /// MAV_CMD_MISSION_START from the first item.
    pub async fn start_mission(&self) -> Result<CommandAck, CommandError> {
        self.command_long(CommandSpec::new(MavCmd::MAV_CMD_MISSION_START, [0.0; 7]))
            .await
    }

    /// MAV_CMD_DO_PAUSE_CONTINUE, param1 0 = pause (hold), 1 = continue.
    pub async fn pause(&self) -> Result<CommandAck, CommandError> {
        self.command_long(CommandSpec::new(
            MavCmd::MAV_CMD_DO_PAUSE_CONTINUE,
            [0.0; 7],
        ))
        .await
    }

    pub async fn resume(&self) -> Result<CommandAck, CommandError> {
        self.command_long(CommandSpec::new(
            MavCmd::MAV_CMD_DO_PAUSE_CONTINUE,
            [1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0],
        ))
        .await
    }

    pub async fn return_to_launch(&self) -> Result<CommandAck, CommandError> {
        self.command_long(CommandSpec::new(
            MavCmd::MAV_CMD_NAV_RETURN_TO_LAUNCH,
            [0.0; 7],
        ))
        .await
    }

    pub async fn land(&self) -> Result<CommandAck, CommandError> {
        let nan = f32::NAN;
        self.command_long(CommandSpec::new(
            MavCmd::MAV_CMD_NAV_LAND,
            [0.0, 0.0, 0.0, nan, nan, nan, nan],
        ))
        .await
    }

    /// MAV_CMD_SET_MESSAGE_INTERVAL: the autopilot streams message `id` every
    /// `interval_us` µs (-1 stops it, 0 restores its default).
    pub async fn set_message_interval(
        &self,
        id: u32,
        interval_us: f32,
    ) -> Result<CommandAck, CommandError> {
        self.command_long(CommandSpec::new(
            MavCmd::MAV_CMD_SET_MESSAGE_INTERVAL,
            [id as f32, interval_us, 0.0, 0.0, 0.0, 0.0, 0.0],
        ))
        .await
    }

    /// MAV_CMD_REQUEST_MESSAGE for message `id` from component `compid` (1 the autopilot,
    /// 100 the camera), with `param2` (e.g. an image index).
    pub async fn request_message(
        &self,
        compid: u8,
        id: u32,
        param2: f32,
    ) -> Result<CommandAck, CommandError> {
        self.command_long(CommandSpec {
            target_component: compid,
            ..CommandSpec::new(
                MavCmd::MAV_CMD_REQUEST_MESSAGE,
                [id as f32, param2, 0.0, 0.0, 0.0, 0.0, 0.0],
            )
        })
        .await
    }

    /// How many images the camera has taken (CAMERA_CAPTURE_STATUS image_count, asked of
    /// component 100 as MAVSDK's camera plugin asks), or `None` if it does not say within
    /// `wait`, or no camera component has been heard (then nothing is asked: a command to
    /// an absent component would only wait out its retries).
    pub async fn camera_image_count(&self, wait: std::time::Duration) -> Option<i32> {
        // A vehicle just heard may not have had its camera's heartbeat yet (1 Hz).
        if !self.wait_for(wait, |t| t.camera_heard).await {
            return None;
        }
        let before = self.telemetry().camera_status_reports;
        let _ = self.request_message(100, 262, 0.0).await;
        self.wait_for(wait, |t| t.camera_status_reports != before)
            .await
            .then(|| self.telemetry().camera_images)
            .flatten()
    }

    /// The camera's own description (CAMERA_INFORMATION, asked of component 100 as
    /// MAVSDK's camera plugin asks), or `None` if it gives none within `wait`.
    pub async fn camera_information(&self, wait: std::time::Duration) -> Option<super::CameraInfo> {
        if let Some(c) = self.telemetry().camera {
            return Some(c);
        }
        let _ = self.request_message(100, 259, 0.0).await;
        self.wait_for(wait, |t| t.camera.is_some()).await;
        self.telemetry().camera
    }
}
