// virtio-rtc (spec 5.22 "RTC Device", uapi virtio_rtc.h; device ID 17,
// Linux VIRTIO_ID_CLOCK): message types, statuses, clock types and the
// byte layout of every requestq message.

export const VIRTIO_RTC_F_ALARM = 0;

export const VIRTIO_RTC_REQUESTQ = 0;
/** Exists only with VIRTIO_RTC_F_ALARM. */
export const VIRTIO_RTC_ALARMQ = 1;

// Read requests.
export const VIRTIO_RTC_REQ_READ = 0x0001;
export const VIRTIO_RTC_REQ_READ_CROSS = 0x0002;
// Control requests.
export const VIRTIO_RTC_REQ_CFG = 0x1000;
export const VIRTIO_RTC_REQ_CLOCK_CAP = 0x1001;
export const VIRTIO_RTC_REQ_CROSS_CAP = 0x1002;
export const VIRTIO_RTC_REQ_READ_ALARM = 0x1003;
export const VIRTIO_RTC_REQ_SET_ALARM = 0x1004;
export const VIRTIO_RTC_REQ_SET_ALARM_ENABLED = 0x1005;

/** struct virtio_rtc_resp_head.status */
export const VIRTIO_RTC_S_OK = 0;
export const VIRTIO_RTC_S_EOPNOTSUPP = 2;
export const VIRTIO_RTC_S_ENODEV = 3;
export const VIRTIO_RTC_S_EINVAL = 4;
export const VIRTIO_RTC_S_EIO = 5;

export const VIRTIO_RTC_CLOCK_UTC = 0;
export const VIRTIO_RTC_CLOCK_TAI = 1;
export const VIRTIO_RTC_CLOCK_MONOTONIC = 2;
export const VIRTIO_RTC_CLOCK_UTC_SMEARED = 3;
export const VIRTIO_RTC_CLOCK_UTC_MAYBE_SMEARED = 4;

export const VIRTIO_RTC_SMEAR_UNSPECIFIED = 0;
export const VIRTIO_RTC_SMEAR_NOON_LINEAR = 1;
export const VIRTIO_RTC_SMEAR_UTC_SLS = 2;

export const VIRTIO_RTC_COUNTER_ARM_VCT = 0;
export const VIRTIO_RTC_COUNTER_X86_TSC = 1;
export const VIRTIO_RTC_COUNTER_INVALID = 0xff;

/** virtio_rtc_resp_clock_cap.flags (only with VIRTIO_RTC_F_ALARM) */
export const VIRTIO_RTC_FLAG_ALARM_CAP = 1 << 0;
/** virtio_rtc_resp_cross_cap.flags */
export const VIRTIO_RTC_FLAG_CROSS_CAP = 1 << 0;

/** struct virtio_rtc_req_head: le16 msg_type, u8 reserved[6]. */
export const VIRTIO_RTC_REQ_HEAD_SIZE = 8;
/** struct virtio_rtc_resp_head: u8 status, u8 reserved[7]. */
export const VIRTIO_RTC_RESP_HEAD_SIZE = 8;

/** Field offsets after the request head (all requests put clock_id first). */
export const VIRTIO_RTC_REQ = { msg_type: 0, clock_id: 8, hw_counter: 10 } as const;
/** Field offsets after the response head. */
export const VIRTIO_RTC_RESP = {
  status: 0,
  /** resp_read, resp_read_cross: le64 */
  clock_reading: 8,
  /** resp_read_cross: le64 */
  counter_cycles: 16,
  /** resp_cfg: le16 */
  num_clocks: 8,
  /** resp_clock_cap: u8 type, u8 leap_second_smearing, u8 flags */
  type: 8,
  leap_second_smearing: 9,
  /** resp_clock_cap.flags (offset 10), resp_cross_cap.flags (offset 8) */
  clock_cap_flags: 10,
  cross_cap_flags: 8,
} as const;

/** Request and response sizes of the requestq messages this header describes. */
export const VIRTIO_RTC_MSG_SIZES: ReadonlyMap<number, { readonly req: number; readonly resp: number }> = new Map([
  [VIRTIO_RTC_REQ_READ, { req: 16, resp: 16 }],
  [VIRTIO_RTC_REQ_READ_CROSS, { req: 16, resp: 24 }],
  [VIRTIO_RTC_REQ_CFG, { req: 8, resp: 16 }],
  [VIRTIO_RTC_REQ_CLOCK_CAP, { req: 16, resp: 16 }],
  [VIRTIO_RTC_REQ_CROSS_CAP, { req: 16, resp: 16 }],
]);
